"""Webhook URLs: ``path("unilink/", include("django_unilink.urls"))``.

- ``unilink:webhook`` (``webhook/<inbox>/``): signed deliveries for the configured inbox ``<inbox>``.
- ``unilink:webhook-unsigned`` (``webhook/<inbox>/<token>/``): only for inboxes with
  ``WEBHOOK_ALLOW_UNSIGNED`` (platforms older than 4.13), authenticated by ``WEBHOOK_URL_TOKEN``.
"""

from django.urls import path

from .views import webhook_view

app_name = "unilink"

urlpatterns = [
    path("webhook/<slug:inbox>/", webhook_view, name="webhook"),
    path("webhook/<slug:inbox>/<str:token>/", webhook_view, name="webhook-unsigned"),
]
