from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the django-unilink signal receivers (imported for their side effect).
        from . import receivers  # noqa: F401
