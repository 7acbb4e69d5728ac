"""URLs of the example site: the chat page, the admin, and django-unilink's webhook endpoint."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("support.urls")),
    path("accounts/", include("django.contrib.auth.urls")),  # sign in / sign out
    path("admin/", admin.site.urls),
    # One webhook URL per configured inbox: /unilink/webhook/default/ for the UNILINK inbox.
    path("unilink/", include("django_unilink.urls")),
]
