"""The local mirror of remote objects: race-safe, order-tolerant upserts shared by webhooks and the sync.

Rules (docs/webhooks.md):

- **Idempotent**: objects are found by remote id (and, for what this site sent, by the
  outbox's keys and ``source_id``) before anything is created; an insert that loses a race
  re-reads the winner's row. Data seen before changes nothing and sends no second signal.
- **Order-tolerant**: a conversation whose ``updated_at`` is older than the mirror's is left
  alone; a message's status never moves backwards (sent < delivered/failed < read) unless the
  data carries a newer ``updated_at``; a deleted message stays deleted.
- **Signals describe changes of the mirror**, not raw events. They are collected on a
  :class:`Context` and sent after the transaction commits (:func:`send_after_commit`).

Callers hold a transaction: rows are locked (``select_for_update``) as they are read, so
concurrent workers serialize per object. Field mapping lives in :mod:`django_unilink.mapping`.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.dispatch import Signal

from . import mapping, signals
from .exceptions import UnilinkError
from .models import Attachment, Contact, ContactInbox, Conversation, Inbox, LocalState, Message, WebhookEvent
from .webhooks import UnilinkEvent

logger = logging.getLogger("django_unilink.receiving")

#: How far a message status has come. Without a newer ``updated_at`` a status only moves up.
STATUS_RANK = {"": -1, "sent": 0, "delivered": 1, "failed": 1, "read": 2}

#: Conversation attributes whose change is reported in ``conversation_updated``, by the
#: platform's name (the key of ``changed_attributes``).
TRACKED_CONVERSATION_FIELDS = (
    ("status", "status"),
    ("assignee_remote_id", "assignee_id"),
    ("priority", "priority"),
    ("snoozed_until", "snoozed_until"),
    ("labels", "labels"),
    ("custom_attributes", "custom_attributes"),
    ("additional_attributes", "additional_attributes"),
)
#: Message fields whose change makes a ``message_updated`` signal.
TRACKED_MESSAGE_FIELDS = ("content", "content_type", "content_attributes", "private", "status")

SIGNAL_NAMES = {getattr(signals, name): name for name in dir(signals) if isinstance(getattr(signals, name), Signal)}


class ProcessingError(UnilinkError):
    """A verified delivery could not be mirrored (the message says why and what to do)."""


# -- processing context --------------------------------------------------------------------------


@dataclass
class Context:
    """One mirroring run (a webhook delivery, or one conversation of a sync): where signals wait for the commit."""

    inbox: Inbox
    event: UnilinkEvent
    #: Sync: known objects are refreshed without signals.
    quiet_updates: bool = False
    #: Whether this is the first processing of the delivery (typing is signalled only then).
    first_attempt: bool = True
    pending: list[tuple[Signal, type[Model], dict[str, Any]]] = field(default_factory=list)

    def emit(self, signal: Signal, sender: type[Model], event: UnilinkEvent | None = None, **kwargs: Any) -> None:
        self.pending.append((signal, sender, {**kwargs, "event": event or self.event}))


def send_after_commit(
    ctx_signals: list[tuple[Signal, type[Model], dict[str, Any]]], webhook_event_pk: int | None
) -> None:
    """Send a run's signals once the current transaction commits (at once outside a transaction)."""
    if ctx_signals:
        transaction.on_commit(lambda: send_signals(ctx_signals, webhook_event_pk))


def send_signals(pending: Iterable[tuple[Signal, type[Model], dict[str, Any]]], webhook_event_pk: int | None) -> None:
    """Send collected signals; a receiver that raises is logged and recorded on the WebhookEvent."""
    failures: list[str] = []
    for signal, sender, kwargs in pending:
        for receiver, result in signal.send_robust(sender=sender, **kwargs):
            if isinstance(result, Exception):
                name = SIGNAL_NAMES.get(signal, "signal")
                where = f"{getattr(receiver, '__module__', '?')}.{getattr(receiver, '__qualname__', repr(receiver))}"
                # Only the type: the message may carry personal data; the row keeps the details.
                logger.error(
                    "Receiver %s of %s raised %s (webhook event %s); the mirrored data is kept.",
                    where,
                    name,
                    type(result).__name__,
                    webhook_event_pk,
                )
                tb = "".join(traceback.format_exception(type(result), result, result.__traceback__))
                failures.append(f"Receiver {where} of {name} raised {type(result).__name__}: {result}\n{tb}")
    if failures and webhook_event_pk is not None:
        summary = failures[0].split("\n", 1)[0]
        if len(failures) > 1:
            summary += f" (and {len(failures) - 1} more)"
        WebhookEvent.objects.filter(pk=webhook_event_pk).update(last_error=summary, traceback="\n".join(failures))


# -- race-safe upserts ---------------------------------------------------------------------------


def _get_or_create(model: type[Model], lookup: dict[str, Any], defaults: dict[str, Any]) -> tuple[Any, bool]:
    """Get (locked) or create a row; when a concurrent transaction inserts it first, return theirs."""
    manager = model._default_manager
    obj = manager.select_for_update().filter(**lookup).first()
    if obj is not None:
        return obj, False
    try:
        with transaction.atomic():
            return manager.create(**lookup, **defaults), True
    except IntegrityError:
        # Why: another worker processing a concurrent delivery created the row between our
        # lookup and our insert. PostgreSQL made us wait for its commit; its row is the one.
        obj = manager.select_for_update().filter(**lookup).first()
        if obj is None:
            raise
        return obj, False


def _save(obj: Model, updates: dict[str, Any]) -> None:
    for name, value in updates.items():
        setattr(obj, name, value)
    fields = list(updates)
    if any(f.name == "local_updated" for f in obj._meta.concrete_fields):
        fields.append("local_updated")
    obj.save(update_fields=fields)


def upsert_contact(ctx: Context, data: dict[str, Any]) -> Contact:
    """The local contact for remote contact data, created or refreshed (keys absent from ``data`` are kept)."""
    fields = mapping.contact_fields(data)
    account = ctx.inbox.account
    remote_id = fields.pop("remote_id")
    if remote_id is None:
        raise ProcessingError("A contact in the payload has no id.")
    present = {k: v for k, v in fields.items() if k in data or k == "raw"}
    contact = Contact.objects.select_for_update().filter(account=account, remote_id=remote_id).first()
    if contact is None and fields["identifier"]:
        # A contact this site created (ensure_contact) whose API answer has not been stored yet.
        contact = (
            Contact.objects.select_for_update()
            .filter(account=account, identifier=fields["identifier"], remote_id__isnull=True)
            .first()
        )
        if contact is not None:
            _save(contact, {"remote_id": remote_id})
    if contact is None:
        values = {**fields, "local_state": LocalState.REMOTE}
        if values["identifier"] and Contact.objects.filter(account=account, identifier=values["identifier"]).exists():
            # Another remote contact holds this identifier here (merged on the platform?): keep both.
            logger.warning(
                "Contact %s: identifier already used by another local contact; stored without it.", remote_id
            )
            values["identifier"] = ""
        contact, created = _get_or_create(Contact, {"account": account, "remote_id": remote_id}, values)
        if created:
            return contact
    updates = {k: v for k, v in present.items() if k != "raw" and getattr(contact, k) != v}
    if updates:
        updates["raw"] = data
        try:
            with transaction.atomic():
                _save(contact, updates)
        except IntegrityError:
            contact.refresh_from_db()
            updates.pop("identifier", None)
            logger.warning(
                "Contact %s: new identifier already used by another local contact; kept the old one.", remote_id
            )
            if len(updates) > 1:
                _save(contact, updates)
    return contact


def source_id_of(data: dict[str, Any]) -> str | None:
    """A conversation's contact-inbox ``source_id``: from ``contact_inbox`` (webhooks) or a nested message (API)."""
    contact_inbox = data.get("contact_inbox")
    if isinstance(contact_inbox, dict) and contact_inbox.get("source_id"):
        return str(contact_inbox["source_id"])
    for item in data.get("messages") or ():
        nested = ((item or {}).get("conversation") or {}).get("contact_inbox") or {}
        if nested.get("source_id"):
            return str(nested["source_id"])
    return None


def upsert_contact_inbox(ctx: Context, data: dict[str, Any], source_id: str | None = None) -> ContactInbox:
    """The contact inbox of a conversation payload, creating it (and its contact) when unknown."""
    source_id = source_id or source_id_of(data)
    if not source_id:
        raise ProcessingError(
            f"Conversation {data.get('id')} is not known here and the payload does not name its contact "
            f"inbox (source_id). Run `manage.py unilink_sync --inbox {ctx.inbox.key} --conversation {data.get('id')}`."
        )
    raw_ci: dict[str, Any] = data["contact_inbox"] if isinstance(data.get("contact_inbox"), dict) else {}
    existing = ContactInbox.objects.filter(inbox=ctx.inbox, source_id=source_id).first()
    if existing is not None:
        if existing.remote_id is None and raw_ci.get("id"):
            _save(existing, {"remote_id": raw_ci["id"], "raw": raw_ci})
        return existing
    sender = (data.get("meta") or {}).get("sender")
    if not isinstance(sender, dict) or sender.get("id") is None:
        sender = {"id": raw_ci.get("contact_id")} if raw_ci.get("contact_id") else None
    if not sender:
        raise ProcessingError(f"Conversation {data.get('id')}: the payload names no contact (meta.sender).")
    contact = upsert_contact(ctx, sender)
    contact_inbox, _ = _get_or_create(
        ContactInbox,
        {"inbox": ctx.inbox, "source_id": source_id},
        {
            "contact": contact,
            "remote_id": raw_ci.get("id"),
            "hmac_verified": bool(raw_ci.get("hmac_verified")),
            "raw": raw_ci,
        },
    )
    return contact_inbox


def _claim_pending_conversation(
    ctx: Context, data: dict[str, Any], source_ids: Iterable[str | None]
) -> Conversation | None:
    """A conversation this site started whose API answer has not been stored yet, if the payload points to it.

    Matched by the outbox's key in ``additional_attributes`` or the ``source_id`` of a message
    this site sent in it (both certain), else by its contact inbox when exactly one such
    conversation is pending there.
    """
    from .outbox import CONVERSATION_KEY

    ids = {s for s in source_ids if s}
    ids.update(str(m["source_id"]) for m in data.get("messages") or () if isinstance(m, dict) and m.get("source_id"))
    pending = Conversation.objects.filter(inbox=ctx.inbox, remote_id__isnull=True).exclude(
        local_state=LocalState.REMOTE
    )
    candidate_pk = None
    key = (data.get("additional_attributes") or {}).get(CONVERSATION_KEY)
    if isinstance(key, str) and key:
        candidate_pk = (
            pending.filter(**{f"additional_attributes__{CONVERSATION_KEY}": key}).values_list("pk", flat=True).first()
        )
    if candidate_pk is None and ids:
        candidate_pk = (
            Message.objects.filter(conversation__in=pending, source_id__in=ids)
            .exclude(local_state=LocalState.REMOTE)
            .values_list("conversation_id", flat=True)
            .first()
        )
    if candidate_pk is None:
        source_id = source_id_of(data)
        if source_id:
            pks = list(pending.filter(contact_inbox__source_id=source_id).values_list("pk", flat=True)[:2])
            candidate_pk = pks[0] if len(pks) == 1 else None
    if candidate_pk is None:
        return None
    conversation = Conversation.objects.select_for_update().filter(pk=candidate_pk, remote_id__isnull=True).first()
    if conversation is None:
        return None
    try:
        with transaction.atomic():
            _save(conversation, {"remote_id": data["id"]})
    except IntegrityError:
        return None  # a concurrent delivery created the row for this id; the caller reads it
    return conversation


def _jsonish(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def normalize_changed_attributes(value: Any) -> dict[str, dict[str, Any]]:
    """The platform's ``changed_attributes`` (a list of one-key objects, an object, or null) as one dict."""
    result: dict[str, dict[str, Any]] = {}
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    for item in items:
        if isinstance(item, dict):
            for key, change in item.items():
                if isinstance(change, dict):
                    result[str(key)] = {
                        "previous_value": change.get("previous_value"),
                        "current_value": change.get("current_value"),
                    }
    return result


def upsert_conversation(
    ctx: Context,
    data: dict[str, Any],
    *,
    source_ids: Iterable[str | None] = (),
    event_changes: dict[str, dict[str, Any]] | None = None,
    source_id_hint: str | None = None,
) -> Conversation:
    """The local conversation for remote conversation data (any shape), locked for this transaction.

    Creates it (with its contact inbox and contact) when unknown; otherwise applies the data
    unless it is older than the mirror. Emits ``conversation_created`` for new remote
    conversations, ``conversation_updated``/``conversation_status_changed`` for changes.
    """
    fields = mapping.conversation_fields(data)
    remote_id = fields.pop("remote_id")
    conversation = Conversation.objects.select_for_update().filter(inbox=ctx.inbox, remote_id=remote_id).first()
    claimed = False
    if conversation is None:
        conversation = _claim_pending_conversation(ctx, data, source_ids)
        claimed = conversation is not None
    if conversation is None:
        contact_inbox = upsert_contact_inbox(ctx, data, source_id_hint)
        values = {**fields, "contact_inbox": contact_inbox, "local_state": LocalState.REMOTE}
        if values["uuid"] is None:
            values.pop("uuid")
        conversation, created = _get_or_create(Conversation, {"inbox": ctx.inbox, "remote_id": remote_id}, values)
        if created:
            ctx.emit(signals.conversation_created, Conversation, conversation=conversation)
            return conversation
    _apply_conversation(ctx, conversation, fields, data, event_changes, claimed)
    return conversation


def _apply_conversation(
    ctx: Context,
    conversation: Conversation,
    fields: dict[str, Any],
    data: dict[str, Any],
    event_changes: dict[str, dict[str, Any]] | None,
    claimed: bool,
) -> None:
    incoming, current = fields["updated_at"], conversation.updated_at
    if incoming is not None and current is not None and incoming < current and not claimed:
        return  # an older state arriving late: never move backwards
    newer = incoming is not None and (current is None or incoming > current)
    if fields.get("uuid") is None:
        fields.pop("uuid", None)
    changes: dict[str, dict[str, Any]] = {}
    for name, remote_name in TRACKED_CONVERSATION_FIELDS:
        old, new = getattr(conversation, name), fields[name]
        if old != new:
            changes[remote_name] = {"previous_value": _jsonish(old), "current_value": _jsonish(new)}
    updates = {k: v for k, v in fields.items() if k != "raw" and getattr(conversation, k) != v}
    if updates or newer:
        updates["raw"] = data
        _save(conversation, updates)
        sender = (data.get("meta") or {}).get("sender")
        if isinstance(sender, dict) and sender.get("id") is not None:
            upsert_contact(ctx, sender)
    if claimed or ctx.quiet_updates:
        return  # our own conversation getting its remote data, or a quiet sync refresh
    reported = {**(event_changes or {}), **changes} if newer else changes
    if any(key != "updated_at" for key in reported):
        ctx.emit(signals.conversation_updated, Conversation, conversation=conversation, changed_attributes=reported)
    if "status" in changes:
        ctx.emit(
            signals.conversation_status_changed,
            Conversation,
            conversation=conversation,
            previous_status=changes["status"]["previous_value"],
        )


def upsert_message(
    ctx: Context,
    data: dict[str, Any],
    conversation: Conversation,
    *,
    nested: dict[str, Any] | None = None,
    signal_updates: bool = False,
    event: UnilinkEvent | None = None,
) -> tuple[Message, str]:
    """The local message for remote message data (any shape), created or updated by the ordering rules.

    Returns the row and what happened to it: ``"created"``, ``"updated"`` (a tracked field
    changed), ``"linked"`` (a message this site sent got its remote data) or ``"unchanged"``.

    ``nested`` is the same message's push data from ``conversation.messages[]`` when the event
    carries it: the only place a webhook gives its ``status`` and ``updated_at``.
    Emits ``message_received`` for a new message that is not this site's (and not an activity
    message), and ``message_updated`` when ``signal_updates`` and a tracked field changed.
    """
    fields = mapping.message_fields(data)
    if nested is not None:
        # Only the two keys webhooks carry nowhere else (and that the serializers checked).
        extra = mapping.message_fields({k: nested[k] for k in ("id", "status", "updated_at") if k in nested})
        for key in ("status", "updated_at"):
            if key in extra and key not in fields:
                fields[key] = extra[key]
    if "status" not in fields and fields["content_attributes"].get("external_error"):
        fields["status"] = "failed"  # a failure report (unilink-api.md §3.4)
    remote_id = fields.pop("remote_id")
    message = Message.objects.select_for_update().filter(conversation=conversation, remote_id=remote_id).first()
    if message is None and fields["source_id"]:
        message = (
            Message.objects.select_for_update().filter(conversation=conversation, source_id=fields["source_id"]).first()
        )
        if message is not None and message.remote_id not in (None, remote_id):
            # The platform does not enforce unique source ids: another message uses this one.
            logger.warning(
                "Message %s reuses source_id of message %s; stored without it.", remote_id, message.remote_id
            )
            fields["source_id"] = None
            message = None
    if message is None:
        values = {**fields, "local_state": LocalState.REMOTE}
        try:
            message, created = _get_or_create(Message, {"conversation": conversation, "remote_id": remote_id}, values)
        except Message.DoesNotExist:  # pragma: no cover - defensive
            raise ProcessingError(f"Message {remote_id} could not be stored.") from None
        if created:
            _sync_attachments(message, data.get("attachments"))
            # Activity messages never reach webhooks (only the sync sees them); a message that
            # arrives already deleted has nothing to show.
            if message.message_type != "activity" and not message.is_deleted:
                ctx.emit(signals.message_received, Message, event=event, message=message)
            return message, "created"
    linking = message.remote_id is None
    changed = _apply_message(message, remote_id, fields, data)
    if changed and signal_updates and not ctx.quiet_updates:
        ctx.emit(signals.message_updated, Message, event=event, message=message)
    return message, "linked" if linking else "updated" if changed else "unchanged"


def _apply_message(message: Message, remote_id: int, fields: dict[str, Any], data: dict[str, Any]) -> bool:
    """Apply newer remote data to a known message; return whether a tracked field changed."""
    updates: dict[str, Any] = {}
    if message.remote_id is None:
        updates["remote_id"] = remote_id  # the echo of a message this site sent
    incoming, current = fields.get("updated_at"), message.updated_at
    stale = incoming is not None and current is not None and incoming < current
    newer = incoming is not None and (current is None or incoming > current)
    was_deleted = message.is_deleted
    if not stale:
        incoming_deleted = bool(fields["content_attributes"].get("deleted"))
        if not (was_deleted and not incoming_deleted):  # deleted stays deleted
            for name in ("content", "content_type", "content_attributes", "private"):
                if getattr(message, name) != fields[name]:
                    updates[name] = fields[name]
        status = fields.get("status")
        if status is not None and status != message.status:
            if newer or STATUS_RANK.get(status, 0) > STATUS_RANK.get(message.status, 0):
                updates["status"] = status
        if newer:
            updates["updated_at"] = incoming
        if "created_at" in fields and fields["created_at"] != message.created_at:
            updates["created_at"] = fields["created_at"]  # the platform's time replaces the local one
        for name in ("sender_type", "sender_remote_id", "sender_name"):
            if fields[name] not in ("", None) and getattr(message, name) != fields[name]:
                updates[name] = fields[name]
    if not updates:
        return False
    if not stale:
        updates["raw"] = data
    _save(message, updates)
    if message.is_deleted and not was_deleted:
        # The platform destroys a deleted message's files; keep only files this site holds.
        message.attachments.filter(file="").delete()
    elif not stale:
        _sync_attachments(message, data.get("attachments"))
    return any(name in updates for name in TRACKED_MESSAGE_FIELDS)


def _sync_attachments(message: Message, items: Any) -> None:
    """Create or refresh a message's attachments from push data, matched by remote id.

    Files this site uploaded (no remote id yet) are matched to the remote ones in order.
    """
    if not items:
        return
    known = {a.remote_id: a for a in message.attachments.all() if a.remote_id is not None}
    unmatched = [a for a in message.attachments.all() if a.remote_id is None]
    new: list[Attachment] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        values = mapping.attachment_fields(item)
        attachment = known.get(values["remote_id"])
        if attachment is None and unmatched:
            attachment = unmatched.pop(0)
        if attachment is None:
            new.append(Attachment(message=message, **values))
            continue
        updates = {k: v for k, v in values.items() if getattr(attachment, k) != v}
        if updates:
            _save(attachment, updates)
    if new:
        Attachment.objects.bulk_create(new)
