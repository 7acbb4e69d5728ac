"""The example support site's project package."""

# Load the Celery app with Django, so tasks queued by the web process use its broker settings.
from .celery import app as celery_app

__all__ = ("celery_app",)
