"""The Celery tasks, and queueing them (task arguments are primary keys only)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from .. import conf
from ..models import Contact, Conversation, Message
from .contacts import ContactFailed, ensure_remote_contact, link_contact_inboxes
from .drain import drain_conversation
from .leases import QUEUED_MARK, mark_queued
from .policy import PENDING, Busy, RetryLater, backoff_delay, error_text, is_retryable, logger

_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    # A worker killed mid-task leaves the message unacknowledged: the broker delivers it again.
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    # Retries are counted on the rows (local_attempts, MAX_RETRIES), not by Celery.
    "max_retries": None,
}


@shared_task(name="django_unilink.deliver_conversation", **_TASK_OPTIONS)
def deliver_conversation(self: Any, conversation_pk: int) -> None:
    """Create the conversation's missing remote objects and send what is queued, in order."""
    eager = bool(getattr(self.request, "is_eager", False))
    # Delivered again by the broker: the worker that had it died (acks_late).
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    # Most tasks of a busy conversation find it taken: only retries and redeliveries ask why.
    why = bool(self.request.retries) or redelivered
    result = drain_conversation(conversation_pk, pause_on_retry=not eager, why_busy=why)
    if eager:
        # Eager mode (no broker): no sleeping retries inside a web request; the rows stay
        # queued with their error for the sweep, unilink_retry, or the next send.
        return
    if result.retry_in is not None:
        raise self.retry(countdown=result.retry_in, exc=result.error)
    if result.paused_until is not None and self.request.retries:
        # A retry that arrived before its pause ended (clock skew between machines): wait again.
        raise self.retry(countdown=_seconds_until(result.paused_until))
    if result.busy_until is not None and redelivered:
        # The lease may be the dead worker's: come back when it runs out (a live holder
        # renews it, and then this task finds nothing left to do).
        raise self.retry(countdown=_seconds_until(result.busy_until))


def _seconds_until(when: dt.datetime) -> float:
    return max(0.0, (when - timezone.now()).total_seconds()) + 0.05


@shared_task(name="django_unilink.deliver_contact", **_TASK_OPTIONS)
def deliver_contact(self: Any, contact_pk: int) -> None:
    """Create a contact queued by :func:`services.ensure_contact` (and link its other inboxes)."""
    eager = bool(getattr(self.request, "is_eager", False))
    try:
        contact = ensure_remote_contact(contact_pk)
    except (Busy, ContactFailed, Contact.DoesNotExist):
        return
    except RetryLater as retry:
        if not eager:
            raise self.retry(countdown=retry.delay, exc=retry.error)
        return
    try:
        link_contact_inboxes(contact)
    except Exception as exc:
        if is_retryable(exc) and not eager and self.request.retries < int(conf.get_setting("MAX_RETRIES")):
            raise self.retry(countdown=backoff_delay(self.request.retries + 1), exc=exc)
        logger.warning("Contact %s: could not link its contact inboxes: %s", contact_pk, error_text(exc))


@shared_task(name="django_unilink.sweep_stuck", ignore_result=True)
def sweep_stuck() -> dict[str, int]:
    """Re-queue work left behind (a lost task, a killed worker, a broker outage).

    Rows ``queued``/``sending`` for longer than ``STUCK_AFTER`` seconds, status changes and
    delivery reports pending as long, get their task queued again. Harmless when the work is
    only waiting for a backoff or another worker: such tasks leave at once. Schedule it with
    Celery beat (every minute is plenty).
    """
    cutoff = timezone.now() - dt.timedelta(seconds=float(conf.get_setting("STUCK_AFTER")))
    conversations: set[int] = set()
    conversations.update(
        Message.objects.filter(local_state__in=PENDING, local_state_changed__lt=cutoff).values_list(
            "conversation_id", flat=True
        )
    )
    conversations.update(
        Conversation.objects.filter(local_state__in=PENDING, local_state_changed__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    conversations.update(
        Conversation.objects.exclude(local_pending_status="")
        .filter(local_updated__lt=cutoff)
        .values_list("pk", flat=True)
    )
    conversations.update(
        Message.objects.exclude(local_report_status="")
        .filter(local_updated__lt=cutoff)
        .values_list("conversation_id", flat=True)
    )
    contacts = set(
        Contact.objects.filter(local_state__in=PENDING, local_state_changed__lt=cutoff)
        .exclude(contact_inboxes__conversations__pk__in=conversations)
        .values_list("pk", flat=True)
    )
    for pk in sorted(conversations):
        publish(deliver_conversation, pk)
    for pk in sorted(contacts):
        publish(deliver_contact, pk)
    if conversations or contacts:
        logger.info("sweep_stuck: re-queued %d conversation(s), %d contact(s)", len(conversations), len(contacts))
    return {"conversations": len(conversations), "contacts": len(contacts)}


def publish(task: Any, pk: int) -> bool:
    """Queue ``task(pk)`` now, on the ``CELERY_QUEUE`` queue when one is configured.

    A broker outage is logged, not raised: the rows stay queued and :func:`sweep_stuck` (or
    ``unilink_retry``) picks them up later.
    """
    options: dict[str, Any] = {}
    queue = conf.get_setting("CELERY_QUEUE")
    if queue:
        options["queue"] = queue
    try:
        task.apply_async(args=(pk,), **options)
    except Exception as exc:  # the broker is down or misconfigured: not this message's fault
        logger.error("Could not queue %s(%s) (%s); the sweep will re-queue it.", getattr(task, "name", task), pk, exc)
        return False
    return True


@dataclass(frozen=True)
class Enqueue:
    """An on-commit callback queueing ``task(pk)``; inspectable in tests (``task_name``, ``pk``)."""

    task_name: str
    pk: int

    def __call__(self) -> None:
        # One queued task per conversation is enough: it sends everything committed before it starts.
        conversation = self.task_name == "django_unilink.deliver_conversation"
        if conversation and not mark_queued(self.pk):
            return
        if not publish(_TASKS[self.task_name], self.pk) and conversation:
            # No task is on its way after all: the next send must queue one.
            Conversation.objects.filter(pk=self.pk, local_lease_owner=QUEUED_MARK).update(
                local_lease_owner="", local_lease_until=None
            )


_TASKS: dict[str, Any] = {
    "django_unilink.deliver_conversation": deliver_conversation,
    "django_unilink.deliver_contact": deliver_contact,
}


def enqueue_on_commit(task_name: str, pk: int) -> None:
    """Queue a task once the current transaction commits (at once in autocommit)."""
    transaction.on_commit(Enqueue(task_name, pk), robust=True)
