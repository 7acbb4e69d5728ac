"""The drainer: everything queued for one conversation, in order, under its lease."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, Model, OuterRef
from django.utils import timezone

from ..client import UnilinkClient
from ..exceptions import APIError, ConfigurationError
from ..mapping import conversation_fields, message_fields
from ..models import Attachment, Contact, Conversation, LocalState, Message
from .contacts import ContactFailed, ensure_remote_contact
from .leases import QUEUED_MARK, Lease, LeaseLost, acquire, pending_messages, pending_reports, release, release_if_idle
from .messages import RemoteCopies, send_batch
from .policy import (
    BATCH_SIZE,
    BUSY_RETRY_SECONDS,
    CONVERSATION_KEY,
    MAX_DRAIN_SECONDS,
    PENDING,
    Busy,
    Conflict,
    RetryLater,
    client_for,
    error_text,
    fail_message,
    logger,
    record_failure,
    record_side_failure,
    requeue_failed,
    set_state,
    signal_failed,
)


@dataclass
class DrainResult:
    """What one run of :func:`drain_conversation` left to do."""

    #: Retry the conversation after this many seconds (a retryable error stopped it).
    retry_in: float | None = None
    error: BaseException | None = None
    #: Another worker holds the conversation (it will see the new work), until about then.
    busy: bool = False
    busy_until: dt.datetime | None = None
    #: The conversation is paused for a backoff until then (a retry is scheduled).
    paused_until: dt.datetime | None = None


def drain_conversation(conversation_pk: int, *, pause_on_retry: bool = True, why_busy: bool = True) -> DrainResult:
    """Do everything queued for one conversation, in order, unless another worker is on it.

    The body of :func:`deliver_conversation`; callable directly (tests, eager mode). With
    ``pause_on_retry`` a retryable error pauses the conversation until the returned
    ``retry_in`` has passed, and the caller must schedule that retry. ``why_busy=False`` saves
    a query when the conversation is taken and the caller does not need to know why.
    """
    owner = uuid.uuid4().hex
    lease_state = acquire(conversation_pk, owner, why=why_busy)
    if not lease_state.acquired:
        # Nothing to do, or another worker on it (it looks again before releasing), or paused.
        busy = not lease_state.idle and lease_state.paused_until is None
        return DrainResult(busy=busy, busy_until=lease_state.held_until, paused_until=lease_state.paused_until)
    lease = Lease(conversation_pk, owner)
    started = time.monotonic()
    while True:
        try:
            retry = _drain_leased(conversation_pk, lease)
        except LeaseLost:
            logger.warning("Conversation %s: lease lost to another worker; stopping.", conversation_pk)
            return DrainResult(busy=True)
        except BaseException:
            release(conversation_pk, owner, None)
            raise
        if retry is not None:
            release(conversation_pk, owner, retry.delay if pause_on_retry else None)
            return DrainResult(retry_in=retry.delay, error=retry.error)
        # Work queued while we held the lease was left to us: release only when there is none.
        if release_if_idle(conversation_pk, owner):
            return DrainResult()
        if time.monotonic() - started >= MAX_DRAIN_SECONDS:
            # A very busy conversation: go on in a fresh task rather than hold a worker forever.
            release(conversation_pk, owner, None)
            return DrainResult(retry_in=0.0)


def _drain_leased(conversation_pk: int, lease: Lease) -> RetryLater | None:
    # What there is to do comes with the row: a drain with nothing to do costs one query.
    conversation = (
        Conversation.objects.select_related("inbox", "contact_inbox")
        .annotate(has_messages=pending_messages(OuterRef("pk")), has_reports=pending_reports(OuterRef("pk")))
        .filter(pk=conversation_pk)
        .first()
    )
    if conversation is None:
        return None
    nothing = not (
        conversation.has_messages  # type: ignore[attr-defined]
        or conversation.has_reports  # type: ignore[attr-defined]
        or conversation.local_pending_status
        or conversation.remote_id is None
        or conversation.local_state in PENDING
    )
    if nothing:
        return None
    if conversation.local_state == LocalState.FAILED:
        if not conversation.has_messages:  # type: ignore[attr-defined]
            return None
        # New messages for a conversation that could not be created: give it another chance.
        rearm_conversations([conversation_pk])
        conversation.refresh_from_db()
    try:
        client = client_for(conversation.inbox)
    except ConfigurationError as exc:
        # Settings are wrong: every waiting row records it and backs off, up to MAX_RETRIES.
        return _attempt_failed_without_call(conversation, exc)
    with client:
        # 1. The conversation (and its contact) must exist before any message.
        if conversation.remote_id is None:
            try:
                _create_conversation(conversation, client)
            except Busy:
                return RetryLater(BUSY_RETRY_SECONDS)
            except RetryLater as retry:
                return retry
            except ContactFailed as exc:
                fail_conversation(conversation.pk, f"The contact could not be created on UniLink: {exc}", exc)
                return None
            except Exception as exc:
                attempts = Conversation.objects.values_list("local_attempts", flat=True).get(pk=conversation.pk)
                outcome = record_failure(Conversation, conversation.pk, exc, attempts)
                if outcome is None:
                    fail_conversation(conversation.pk, error_text(exc), exc)
                return outcome
            conversation.refresh_from_db()  # keeps the annotations
        elif conversation.local_state in PENDING:
            set_state(Conversation, conversation.pk, LocalState.SENT, local_error="")

        # 2. Messages, oldest first; a retryable error stops here so nothing overtakes it.
        copies = RemoteCopies(conversation, client)
        seen: set[int] = set()
        while conversation.has_messages:  # type: ignore[attr-defined]
            batch = list(
                Message.objects.filter(conversation_id=conversation_pk, local_state__in=PENDING)
                .annotate(has_files=Exists(Attachment.objects.filter(message=OuterRef("pk"))))
                .order_by("pk")[:BATCH_SIZE]
            )
            if not batch or batch[0].pk in seen:  # nothing new (the guard never trips normally)
                break
            seen.add(batch[0].pk)
            outcome = send_batch(batch, conversation, client, lease, copies)
            if outcome is not None and outcome.delay > 0:
                return outcome
            if outcome is None and len(batch) < BATCH_SIZE:
                break  # that was all; newer messages are seen before the lease is released

        # 3. A status change, after the messages written before it.
        if conversation.local_pending_status:  # a newer request is seen by the next round
            lease.keep()
            try:
                _push_status(conversation_pk, client)
            except Exception as exc:
                outcome = record_side_failure(Conversation, conversation_pk, exc, "status change")
                if outcome is not None:
                    return outcome
                Conversation.objects.filter(pk=conversation_pk).update(local_pending_status="")

        # 4. Delivery reports of messages that exist remotely (ours included, once sent).
        reports = conversation.has_reports or conversation.has_messages  # type: ignore[attr-defined]
        for message_pk in (
            ()
            if not reports
            else (
                Message.objects.filter(conversation_id=conversation_pk, remote_id__isnull=False)
                .exclude(local_report_status="")
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        ):
            lease.keep()
            try:
                _push_report(message_pk, conversation, client)
            except Exception as exc:
                outcome = record_side_failure(Message, message_pk, exc, "delivery report")
                if outcome is not None:
                    return outcome
                Message.objects.filter(pk=message_pk).update(local_report_status="", local_report_error="")
    return None


def _conversation_key(conversation: Conversation) -> str | None:
    attrs = conversation.additional_attributes if isinstance(conversation.additional_attributes, dict) else {}
    key = attrs.get(CONVERSATION_KEY)
    return str(key) if key else None


def _find_conversation(conversation: Conversation, client: UnilinkClient) -> dict[str, Any] | None:
    key = _conversation_key(conversation)
    if key is None:
        return None
    for found in client.list_conversations(
        source_id=conversation.contact_inbox.source_id, inbox_id=conversation.inbox.remote_id, status="all"
    ):
        attrs = found.get("additional_attributes")
        if isinstance(attrs, dict) and attrs.get(CONVERSATION_KEY) == key:
            return found
    return None


def _create_conversation(conversation: Conversation, client: UnilinkClient) -> None:
    """Create the conversation (and its contact first); raises on failure."""
    contact = ensure_remote_contact(conversation.contact_inbox.contact_id)
    reconcile = conversation.local_state == LocalState.SENDING or bool(conversation.local_error)
    Conversation.objects.filter(pk=conversation.pk).update(
        local_state=LocalState.SENDING,
        local_attempts=F("local_attempts") + 1,
        local_state_changed=timezone.now(),
        local_updated=timezone.now(),
    )
    data = _find_conversation(conversation, client) if reconcile else None
    if data is None:
        data = client.create_conversation(
            source_id=conversation.contact_inbox.source_id,
            inbox_id=conversation.inbox.remote_id,
            contact_id=contact.remote_id,
            custom_attributes=conversation.custom_attributes or None,
            additional_attributes=conversation.additional_attributes or None,
        )
    _adopt_conversation(conversation, data)


def _adopt_conversation(conversation: Conversation, data: dict[str, Any]) -> None:
    fields = conversation_fields(data)
    if fields["remote_id"] is None:
        raise APIError(f"The platform returned a conversation without an id: {str(data)[:200]}")
    now = timezone.now()
    with transaction.atomic():
        other = (
            Conversation.objects.select_for_update()
            .filter(inbox_id=conversation.inbox_id, remote_id=fields["remote_id"])
            .exclude(pk=conversation.pk)
            .first()
        )
        if other is not None:
            if other.local_state != LocalState.REMOTE:
                raise Conflict(
                    f"UniLink conversation {fields['remote_id']} is already linked to local conversation {other.pk}."
                )
            # A webhook mirrored it before our API response arrived: keep this row (host code
            # holds it), take the mirror's messages, and its state when it is newer.
            if other.updated_at and fields["updated_at"] and other.updated_at > fields["updated_at"] and other.raw:
                fields = conversation_fields(other.raw)
            Message.objects.filter(conversation=other).update(conversation=conversation)
            other.delete()
        Conversation.objects.filter(pk=conversation.pk).update(
            **fields, local_state=LocalState.SENT, local_error="", local_state_changed=now, local_updated=now
        )


def fail_conversation(conversation_pk: int, text: str, error: BaseException) -> None:
    """The conversation cannot be created: it and every message waiting for it fail."""
    set_state(Conversation, conversation_pk, LocalState.FAILED, local_error=text, local_pending_status="")
    for pk in Message.objects.filter(conversation_id=conversation_pk, local_state__in=PENDING).values_list(
        "pk", flat=True
    ):
        fail_message(pk, f"The conversation could not be created on UniLink: {text}", error)


def rearm_conversations(conversation_pks: list[int]) -> None:
    requeue_failed(Conversation.objects.filter(pk__in=conversation_pks))
    # Lift backoff pauses and marks of tasks that may be lost (not leases of live workers).
    Conversation.objects.filter(pk__in=conversation_pks, local_lease_owner__in=("", QUEUED_MARK)).update(
        local_lease_owner="", local_lease_until=None
    )
    contact_pks = Conversation.objects.filter(pk__in=conversation_pks).values_list(
        "contact_inbox__contact_id", flat=True
    )
    requeue_failed(Contact.objects.filter(pk__in=list(contact_pks)))


def _push_status(conversation_pk: int, client: UnilinkClient) -> None:
    conversation = Conversation.objects.get(pk=conversation_pk)
    status = conversation.local_pending_status
    if not status:
        return
    Conversation.objects.filter(pk=conversation_pk).update(local_attempts=F("local_attempts") + 1)
    data = client.toggle_status(int(conversation.remote_id), status)  # type: ignore[arg-type]
    current = str(data.get("current_status") or status)
    Conversation.objects.filter(pk=conversation_pk).update(status=current, local_error="", local_updated=timezone.now())
    # A newer set_status() may have arrived meanwhile: it stays pending.
    Conversation.objects.filter(pk=conversation_pk, local_pending_status=status).update(
        local_pending_status="", local_attempts=0
    )


def _push_report(message_pk: int, conversation: Conversation, client: UnilinkClient) -> None:
    message = Message.objects.get(pk=message_pk)
    status, error = message.local_report_status, message.local_report_error
    if not status or message.remote_id is None:
        return
    Message.objects.filter(pk=message_pk).update(local_attempts=F("local_attempts") + 1)
    data = client.update_message_status(
        int(conversation.remote_id),  # type: ignore[arg-type]
        int(message.remote_id),
        status,
        external_error=(error or None) if status == "failed" else None,
    )
    update: dict[str, Any] = {"local_error": "", "local_updated": timezone.now()}
    fields = message_fields(data) if isinstance(data, dict) and data.get("id") else {}
    if fields.get("status"):
        update["status"] = fields["status"]
        update["content_attributes"] = fields["content_attributes"]
    Message.objects.filter(pk=message_pk).update(**update)
    Message.objects.filter(pk=message_pk, local_report_status=status, local_report_error=error).update(
        local_report_status="", local_report_error="", local_attempts=0
    )


def _attempt_failed_without_call(conversation: Conversation, exc: BaseException) -> RetryLater | None:
    """A configuration error before any request: count it on the first waiting row."""
    head_pk = (
        Message.objects.filter(conversation_id=conversation.pk, local_state__in=PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    model: type[Model] = Message if head_pk is not None and conversation.remote_id is not None else Conversation
    pk = int(head_pk) if model is Message and head_pk is not None else conversation.pk
    model._default_manager.filter(pk=pk).update(local_attempts=F("local_attempts") + 1)  # type: ignore[attr-defined]
    attempts = model._default_manager.values_list("local_attempts", flat=True).get(pk=pk)  # type: ignore[attr-defined]
    outcome = record_failure(model, pk, exc, attempts)
    if outcome is None:
        if model is Conversation:
            fail_conversation(conversation.pk, error_text(exc), exc)
        else:
            signal_failed(pk, exc)
    return outcome
