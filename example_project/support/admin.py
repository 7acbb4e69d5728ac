"""Staff see the chat lines beside django-unilink's own admin (contacts, conversations, messages)."""

from django.contrib import admin

from .models import ChatLine


@admin.register(ChatLine)
class ChatLineAdmin(admin.ModelAdmin):
    list_display = ("created", "conversation", "kind", "author", "text", "failed")
    list_filter = ("kind", "failed")
    search_fields = ("text", "author")
    raw_id_fields = ("conversation", "message")
    date_hierarchy = "created"
