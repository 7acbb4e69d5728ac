"""pytest fixtures of django-unilink's testing kit (docs/testing.md).

Installed with the package as a ``pytest11`` plugin, so a host project's tests get them without
any ``conftest.py`` line (they need pytest-django, as every Django pytest suite does):

- ``unilink_emulator``: a running :class:`~django_unilink.testing.emulator.Emulator`, with
  ``settings.UNILINK`` pointing at it for the test. Used together with pytest-django's
  ``live_server``, the emulator's inbox posts its webhooks to the live server's webhook URL,
  so a whole round trip (send, agent reply, webhook, signal) runs for real.
- ``unilink_tasks``: a context manager that runs Celery tasks at once, in the test's process,
  including the ones queued with ``transaction.on_commit`` inside the test's transaction.

The same two helpers exist as plain context managers for ``unittest``-style tests, in
:mod:`django_unilink.testing.contexts`: :func:`emulator_settings` and :func:`run_tasks_synchronously`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from .contexts import EMULATOR_TOKEN, EMULATOR_WEBHOOK_SECRET, emulator_settings, run_tasks_synchronously

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = [
    "EMULATOR_TOKEN",
    "EMULATOR_WEBHOOK_SECRET",
    "emulator_settings",
    "run_tasks_synchronously",
    "unilink_emulator",
    "unilink_tasks",
]

@pytest.fixture
def unilink_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A running UniLink emulator with ``settings.UNILINK`` pointing at it.

    When the test also uses ``live_server``, the inbox's webhooks go to the live server.
    """
    live_server_url = None
    if "live_server" in request.fixturenames:
        live_server_url = request.getfixturevalue("live_server").url
    with emulator_settings(live_server_url=live_server_url) as emulator:
        yield emulator


@pytest.fixture
def unilink_tasks() -> Callable[..., contextlib.AbstractContextManager[None]]:
    """``with unilink_tasks(): ...`` runs the Celery tasks queued inside the block, synchronously."""
    return run_tasks_synchronously
