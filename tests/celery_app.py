"""The Celery app of the test suite, and of the workers the integration tests start::

    celery -A tests.celery_app worker -P threads -c 4 -Q <queue>

Configured like a host project's ``celery.py`` (``CELERY_*`` Django settings, tasks
autodiscovered), with a Redis broker on loopback. The environment adapts it to a test run; the
worker tests (tests/test_worker.py) set it for their worker subprocesses:

- ``UNILINK_TEST_BROKER_URL``: the broker (default ``redis://127.0.0.1:6379/15``).
- ``UNILINK_WORKER_DB_NAME``: the database the worker uses (the test run's test database).
- ``UNILINK_WORKER_SETTINGS``: JSON of Django settings to override (``UNILINK`` etc.).
- ``UNILINK_TEST_BROKER_OPTIONS``: JSON of Kombu transport options (e.g. a short ``visibility_timeout``).
"""

from __future__ import annotations

import json
import os

import django
from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

BROKER_URL = os.environ.get("UNILINK_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


def _apply_worker_environment() -> None:
    """Point this process at the test run's database and settings (worker subprocesses only)."""
    for name, value in json.loads(os.environ.get("UNILINK_WORKER_SETTINGS") or "{}").items():
        setattr(settings, name, value)
    db_name = os.environ.get("UNILINK_WORKER_DB_NAME")
    if db_name:
        database = settings.DATABASES["default"]
        database["NAME"] = db_name
        database.setdefault("CONN_MAX_AGE", 60)  # with CELERY_DB_REUSE_MAX below
        if database["ENGINE"].endswith("sqlite3"):
            options = database.setdefault("OPTIONS", {})
            options.setdefault("timeout", 30)
            # Take the write lock when a transaction begins: no lock upgrades that fail at once.
            if django.VERSION >= (5, 1):
                options.setdefault("transaction_mode", "IMMEDIATE")
            else:
                from tests import sqlite_immediate

                sqlite_immediate.enable()


_apply_worker_environment()

app = Celery("unilink_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_url = BROKER_URL
app.conf.broker_transport_options = json.loads(os.environ.get("UNILINK_TEST_BROKER_OPTIONS") or "{}")
app.conf.broker_connection_retry_on_startup = True
app.conf.task_ignore_result = True
app.autodiscover_tasks(["django_unilink"])
if os.environ.get("UNILINK_WORKER_DB_NAME"):
    # Celery's Django fixup closes the database connection around every task unless told to
    # reuse it; opening one costs more than a whole outbox task (docs/sending.md, "Throughput").
    app.conf["CELERY_DB_REUSE_MAX"] = 1000
