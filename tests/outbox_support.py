"""Helpers for the sending tests: the emulator as the platform, and a synchronous drainer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.test import TestCase

from django_unilink import outbox
from django_unilink.models import Conversation
from django_unilink.testing.emulator import Emulator

TOKEN = "test-token-do-not-log"

#: Settings for fast tests: short timeouts, tiny backoffs.
FAST = {
    "CONNECT_TIMEOUT": 1.0,
    "READ_TIMEOUT": 0.5,
    "RETRY_BACKOFF": 0.01,
    "RETRY_BACKOFF_MAX": 0.05,
}


@contextlib.contextmanager
def running_emulator(settings: Any) -> Iterator[Emulator]:
    """A running emulator with inbox 7 (no webhooks), and ``UNILINK`` pointing at it.

    ``settings`` is pytest-django's fixture; a test module makes its ``emulator`` fixture of it.
    """
    with Emulator(account_id=1, api_access_token=TOKEN) as emu:
        emu.add_inbox(7)
        settings.UNILINK = {**settings.UNILINK, "BASE_URL": emu.url, **FAST}
        yield emu


def drain(conversation_pk: int, *, rounds: int = 100) -> outbox.DrainResult:
    """Run the conversation's task body until nothing is left, as a worker with its retries would.

    Backoff pauses are lifted at once instead of waited for (a retry is due immediately).
    Signals queued with ``on_commit`` are sent, even inside the transaction of a ``db`` test.
    """
    for _ in range(rounds):
        with TestCase.captureOnCommitCallbacks(execute=True):
            result = outbox.drain_conversation(conversation_pk)
        if result.retry_in is None and result.paused_until is None and not result.busy:
            return result
        Conversation.objects.filter(pk=conversation_pk, local_lease_owner="").update(local_lease_until=None)
    raise AssertionError(f"conversation {conversation_pk} still has work after {rounds} rounds")


def posts(emu: Emulator, fragment: str) -> list[Any]:
    """The POST requests the emulator answered whose path ends with ``fragment``."""
    return [r for r in emu.requests_log if r.method == "POST" and r.path.endswith(fragment)]


def remote_by_source(emu: Emulator, source_id: str) -> list[dict[str, Any]]:
    """Every remote message carrying ``source_id``."""
    return [m for m in emu.messages() if m.get("source_id") == source_id]
