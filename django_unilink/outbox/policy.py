"""Retry policy, error texts and row bookkeeping shared by the outbox modules."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from .. import conf, signals
from ..client import UnilinkClient
from ..exceptions import (
    APIError,
    ConfigurationError,
    InvalidInputError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnilinkError,
    ValidationError,
)
from ..models import Inbox, LocalState, Message

logger = logging.getLogger("django_unilink.outbox")

#: Key of ``Conversation.additional_attributes`` holding the uuid this site gives each
#: conversation it creates, to find it again after an unknown outcome.
CONVERSATION_KEY = "django_unilink_key"

#: Seconds a task waits before looking again at a contact another worker is creating.
BUSY_RETRY_SECONDS = 1.0

#: The platform's flood guard ("Too many messages", 200 per conversation per minute) is a 422,
#: but waiting helps: the message is retried after this many seconds at least.
FLOOD_RETRY_SECONDS = 60.0

#: A task drains for at most this long (seconds), then hands over to a fresh task, so that
#: one busy conversation cannot hold a worker thread forever.
MAX_DRAIN_SECONDS = 60.0

#: Messages claimed and read per query while draining.
BATCH_SIZE = 50

#: Answers of the platform are stored at least this often (seconds) while a batch is sent.
FLUSH_SECONDS = 0.25

PENDING = (LocalState.QUEUED, LocalState.SENDING)


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    Celery's ``retry_backoff`` with ``retry_jitter``: ``RETRY_BACKOFF * 2**(attempt-1)``, capped
    at ``RETRY_BACKOFF_MAX``, then "full jitter" (uniform between 0 and that). Settings are read
    now, and fractions of a second are allowed (Celery's own helper takes integers). The
    platform's ``Retry-After`` hint is a lower bound.
    """
    base = max(0.0, float(conf.get_setting("RETRY_BACKOFF")))
    cap = max(0.0, float(conf.get_setting("RETRY_BACKOFF_MAX")))
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
    if retry_after:
        delay = max(delay, float(retry_after))
    return delay


def is_retryable(exc: BaseException) -> bool:
    """Whether a later attempt may succeed (429, 5xx, transport, flood guard, configuration, unexpected)."""
    if isinstance(exc, (RateLimitedError, ServerError, TransportError, ConfigurationError)):
        return True
    if isinstance(exc, ValidationError):
        return is_flood(exc)
    if isinstance(exc, (APIError, InvalidInputError, Conflict, FileNotFoundError)):
        return False
    # A database hiccup, a storage outage, a bug: retried, counted, and logged with a traceback.
    return True


def is_flood(exc: ValidationError) -> bool:
    return "too many messages" in exc.remote_message.lower()


def error_text(exc: BaseException) -> str:
    """What ``local_error`` stores: the platform's own words when it gave some."""
    if isinstance(exc, ValidationError) and exc.remote_message:
        return f"HTTP 422: {exc.remote_message}"
    if isinstance(exc, UnilinkError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class Conflict(UnilinkError):
    """A local conflict that retrying cannot fix (the message says what to do)."""


class Busy(Exception):
    """Another worker is creating the same contact right now."""


@dataclass
class RetryLater(Exception):
    """Stop draining; try again after ``delay`` seconds."""

    delay: float
    error: BaseException | None = None


def fire(callback: Callable[[], Any]) -> None:
    """Run a signal after the current transaction commits (at once in autocommit)."""
    transaction.on_commit(callback)


def client_for(inbox: Inbox) -> UnilinkClient:
    return UnilinkClient.from_config(conf.get_inbox_config(inbox.key))


def set_state(model: type[Model], pk: int, state: str, **extra: Any) -> int:
    now = timezone.now()
    return model._default_manager.filter(pk=pk).update(  # type: ignore[attr-defined]
        local_state=state, local_state_changed=now, local_updated=now, **extra
    )


def requeue_failed(rows: QuerySet[Any]) -> int:
    """Put the failed rows among ``rows`` back in the queue, attempts from zero; returns how many.

    The last error stays, so the next attempt first looks for a copy an earlier one may have made.
    """
    now = timezone.now()
    return rows.filter(local_state=LocalState.FAILED).update(
        local_state=LocalState.QUEUED, local_attempts=0, local_state_changed=now, local_updated=now
    )


def record_failure(model: type[Model], pk: int, exc: BaseException, attempts: int) -> RetryLater | None:
    """Store ``exc`` on a row after attempt number ``attempts``.

    Returns when to retry, or ``None`` when the row is now failed for good (a final error, or
    more than ``MAX_RETRIES`` retries).
    """
    text = error_text(exc)
    max_retries = int(conf.get_setting("MAX_RETRIES"))
    if is_retryable(exc) and attempts <= max_retries:
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, ValidationError) and is_flood(exc):
            retry_after = max(retry_after or 0.0, FLOOD_RETRY_SECONDS)
        delay = backoff_delay(attempts, retry_after)
        # Back to queued; the stored error tells the next attempt to reconcile before posting.
        set_state(model, pk, LocalState.QUEUED, local_error=text)
        log = logger.warning if not isinstance(exc, (APIError, ConfigurationError)) else logger.info
        log(
            "%s %s: attempt %d failed (%s); retrying in %.1f s",
            model.__name__,
            pk,
            attempts,
            text,
            delay,
            exc_info=not isinstance(exc, UnilinkError),
        )
        return RetryLater(delay, exc)
    if is_retryable(exc):
        text = f"Gave up after {attempts} attempts. Last error: {text}"
    set_state(model, pk, LocalState.FAILED, local_error=text)
    logger.warning("%s %s failed for good: %s", model.__name__, pk, text)
    return None


def record_side_failure(model: type[Model], pk: int, exc: BaseException, what: str) -> RetryLater | None:
    """Errors of status changes and reports: they never change ``local_state`` of the row."""
    attempts = model._default_manager.values_list("local_attempts", flat=True).get(pk=pk)  # type: ignore[attr-defined]
    text = f"{what.capitalize()} failed: {error_text(exc)}"
    if is_retryable(exc) and attempts <= int(conf.get_setting("MAX_RETRIES")):
        model._default_manager.filter(pk=pk).update(local_error=text)  # type: ignore[attr-defined]
        delay = backoff_delay(attempts, getattr(exc, "retry_after", None))
        logger.info("%s %s: %s; retrying in %.1f s", model.__name__, pk, text, delay)
        return RetryLater(delay, exc)
    model._default_manager.filter(pk=pk).update(local_error=text, local_attempts=0)  # type: ignore[attr-defined]
    logger.warning("%s %s: %s (given up)", model.__name__, pk, text)
    return None


def fail_message(message_pk: int, text: str, error: BaseException) -> None:
    """Mark a message failed (if it still waits) and send ``message_delivery_failed``."""
    changed = Message.objects.filter(pk=message_pk, local_state__in=(*PENDING, LocalState.FAILED)).update(
        local_state=LocalState.FAILED,
        local_error=text,
        local_state_changed=timezone.now(),
        local_updated=timezone.now(),
    )
    if changed:
        signal_failed(message_pk, error)


def signal_failed(message_pk: int, error: BaseException) -> None:
    def send() -> None:
        message = Message.objects.filter(pk=message_pk).first()
        if message is not None:
            signals.message_delivery_failed.send(sender=Message, message=message, error=error)

    fire(send)
