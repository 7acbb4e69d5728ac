"""Context managers of the testing kit, usable from any test style (pytest or ``unittest``).

- :func:`emulator_settings`: start a UniLink emulator and point ``settings.UNILINK`` at it.
- :func:`run_tasks_synchronously`: run Celery tasks at once, including on-commit ones.

The pytest fixtures in :mod:`django_unilink.testing.pytest_plugin` are thin wrappers of these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from .emulator import Emulator

#: The credentials the emulator fixture uses (fake values, safe to print).
EMULATOR_TOKEN = "emulator-api-token"
EMULATOR_WEBHOOK_SECRET = "emulator-webhook-secret"


def _unilink_setting() -> dict[str, Any]:
    from django.conf import settings

    return dict(getattr(settings, "UNILINK", None) or {})


@contextlib.contextmanager
def emulator_settings(
    emulator: Emulator | None = None,
    *,
    live_server_url: str | None = None,
    inbox: str = "default",
) -> Iterator[Emulator]:
    """Start an emulator (unless one is given) and point ``settings.UNILINK`` at it.

    The inbox's ids are the ones already in ``UNILINK`` (``ACCOUNT_ID`` 1 and ``INBOX_ID`` 7 when
    unset), so rows made by the factories keep matching. Other keys of ``UNILINK``
    (``WEBHOOK_PROCESSING``, timeouts...) are kept. With ``live_server_url``, the emulator posts
    the inbox's webhooks to ``<live_server_url>/<the site's webhook path>``; without it, the
    inbox has no webhook URL and nothing is posted.
    """
    from django.test import override_settings
    from django.urls import NoReverseMatch, reverse

    from .emulator import Emulator

    current = _unilink_setting()
    account_id = int(current.get("ACCOUNT_ID") or 1)
    inbox_id = int(current.get("INBOX_ID") or 7)
    webhook_url = None
    if live_server_url:
        try:
            path = reverse("unilink:webhook", kwargs={"inbox": inbox})
        except NoReverseMatch:
            raise RuntimeError(
                "unilink_emulator with live_server needs django-unilink's webhook URL: add "
                'path("unilink/", include("django_unilink.urls")) to your ROOT_URLCONF.'
            ) from None
        webhook_url = live_server_url.rstrip("/") + path

    owned = emulator is None
    if emulator is None:
        emulator = Emulator(account_id=account_id, api_access_token=EMULATOR_TOKEN).start()
    try:
        emulator.add_inbox(inbox_id, webhook_url=webhook_url, secret=EMULATOR_WEBHOOK_SECRET)
        new = {
            **current,
            "BASE_URL": emulator.url,
            "ACCOUNT_ID": emulator.account_id,
            "API_ACCESS_TOKEN": emulator.api_access_token,
            "INBOX_ID": inbox_id,
            "WEBHOOK_SECRET": EMULATOR_WEBHOOK_SECRET,
        }
        with override_settings(UNILINK=new):
            yield emulator
    finally:
        if owned:
            emulator.stop()


@contextlib.contextmanager
def run_tasks_synchronously(app: Celery | None = None, *, propagate: bool = True) -> Iterator[None]:
    """Run Celery tasks at once, in this process, for the duration of the block.

    - Tasks are applied eagerly (``task_always_eager``); with ``propagate`` their exceptions reach
      the caller instead of being stored on the result.
    - ``transaction.on_commit`` callbacks (django-unilink queues its tasks with them) registered
      inside the block run when the block exits, even inside the transaction that wraps a
      pytest-django ``db`` test or a ``django.test.TestCase``, which never commits. Callbacks
      that register more callbacks are run too. Outside a transaction they run at once, as usual.

    ``app`` is the Celery app in use (default: ``celery.current_app``, the one your project's
    ``celery.py`` created).
    """
    from celery import current_app
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.test import TestCase

    app = app or current_app
    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = propagate
    try:
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            with TestCase.captureOnCommitCallbacks(using=DEFAULT_DB_ALIAS, execute=True):
                yield
        else:
            yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved
