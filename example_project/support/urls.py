from django.urls import path

from . import views

app_name = "support"

urlpatterns = [
    path("", views.chat, name="chat"),
    path("chat/lines/", views.lines, name="lines"),
    path("chat/send/", views.send, name="send"),
    path("chat/new/", views.new_conversation, name="new"),
]
