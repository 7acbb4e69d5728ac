from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
]

try:  # the webhook URLs (django_unilink.urls) arrive with the receiving work
    urlpatterns.append(path("unilink/", include("django_unilink.urls")))
except ImportError:  # pragma: no cover
    pass
