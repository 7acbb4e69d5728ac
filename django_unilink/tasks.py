"""Celery tasks of django-unilink, collected here so Celery's ``autodiscover_tasks()`` finds them.

The tasks themselves live beside the logic they run: sending in :mod:`django_unilink.outbox`,
receiving in :mod:`django_unilink.receiving`. Task arguments are primary keys only.
"""

from .outbox import deliver_contact, deliver_conversation, sweep_stuck  # noqa: F401
from .receiving import process_webhook_event, purge_webhook_log, sync_inbox  # noqa: F401
