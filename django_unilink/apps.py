from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UnilinkConfig(AppConfig):
    name = "django_unilink"
    label = "django_unilink"
    verbose_name = _("UniLink")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the system checks (imported for their side effect).
        from . import checks  # noqa: F401
