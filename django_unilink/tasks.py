"""Celery tasks of django-unilink, collected here so Celery's ``autodiscover_tasks()`` finds them.

The tasks themselves live beside the logic they run: sending in :mod:`django_unilink.outbox`,
receiving in :mod:`django_unilink.receiving`. Task arguments are primary keys only.
"""
