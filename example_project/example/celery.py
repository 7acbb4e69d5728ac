"""The example site's Celery app: ``celery -A example worker`` (``-B`` adds the periodic tasks).

It reads every ``CELERY_*`` setting from example/settings.py and finds the tasks of installed
apps (django-unilink's sending and webhook-processing tasks among them).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

app = Celery("example")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_unilink_housekeeping(sender: Celery, **kwargs: Any) -> None:
    """The periodic tasks django-unilink asks a site to schedule (run by Celery beat)."""
    from django_unilink.tasks import purge_webhook_log, sweep_stuck

    # Re-queue sends left behind by a lost task or a killed worker.
    sender.add_periodic_task(60.0, sweep_stuck.s(), name="unilink: re-queue stuck sends")
    # Keep the webhook log from growing forever (UNILINK["WEBHOOK_LOG_DAYS"], 30 days by default).
    sender.add_periodic_task(24 * 3600.0, purge_webhook_log.s(), name="unilink: purge the webhook log")
