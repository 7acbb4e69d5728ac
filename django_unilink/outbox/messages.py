"""Sending a conversation's queued messages in order, and storing the platform's answers."""

from __future__ import annotations

import contextlib
import functools
import mimetypes
import os
import time
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from .. import signals
from ..client import UnilinkClient
from ..mapping import message_fields
from ..models import Conversation, LocalState, Message
from .leases import Lease
from .policy import FLUSH_SECONDS, PENDING, RetryLater, fire, record_failure, signal_failed


def _attachments(message: Message) -> list[tuple[str, bytes, str]]:
    files: list[tuple[str, bytes, str]] = []
    if not getattr(message, "has_files", True):  # annotated on the batch: no query for most
        return files
    for attachment in message.attachments.all():
        if not attachment.file:
            continue
        name = attachment.filename or os.path.basename(attachment.file.name or "") or "attachment"
        mime = attachment.mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        with attachment.file.open("rb") as handle:
            files.append((name, handle.read(), mime))
    return files


class RemoteCopies:
    """Finds the remote copies of messages whose earlier attempt had an unknown outcome.

    One listing serves a whole drain: it starts after the newest remote id known before the
    first such message was written (the platform's ids grow, so the copies come after it).
    """

    def __init__(self, conversation: Conversation, client: UnilinkClient) -> None:
        self.conversation = conversation
        self.client = client
        self.by_source: dict[str, dict[str, Any]] | None = None

    def find(self, message: Message) -> dict[str, Any] | None:
        if self.by_source is None:
            anchor = Message.objects.filter(
                conversation_id=self.conversation.pk, pk__lt=message.pk, remote_id__isnull=False
            ).aggregate(top=Max("remote_id"))["top"]
            by_source: dict[str, dict[str, Any]] = {}
            for found in self.client.iter_messages(int(self.conversation.remote_id), after=int(anchor or 0)):  # type: ignore[arg-type]
                if found.get("source_id"):
                    by_source.setdefault(str(found["source_id"]), found)
            # Kept only when complete: a listing that failed half-way must be done again.
            self.by_source = by_source
        return self.by_source.get(str(message.source_id))


def _post(message: Message, conversation: Conversation, client: UnilinkClient, copies: RemoteCopies) -> dict[str, Any]:
    """The platform's copy of ``message``: adopted when an earlier attempt created it, else posted."""
    # In "sending" before this drain claimed it, or with an error stored: an earlier attempt's
    # outcome is unknown, so look before posting.
    if message.local_state == LocalState.SENDING or message.local_error:
        found = copies.find(message)
        if found is not None:
            return found
    return client.create_message(
        int(conversation.remote_id),  # type: ignore[arg-type]
        content=message.content or None,
        message_type=message.message_type,
        private=message.private,
        content_type=message.content_type if message.content_type and message.content_type != "text" else None,
        content_attributes=message.content_attributes or None,
        source_id=message.source_id,
        attachments=_attachments(message),
    )


def send_batch(
    batch: Sequence[Message], conversation: Conversation, client: UnilinkClient, lease: Lease, copies: RemoteCopies
) -> RetryLater | None:
    """Send messages in order; stop at a retryable error (the rest goes back to ``queued``).

    The batch is claimed (``sending``) in one statement before the first post, and answers are
    stored in one statement every :data:`FLUSH_SECONDS`: a worker that dies in between leaves
    ``sending`` rows, which the next attempt finds on the platform by their ``source_id``.
    """
    now = timezone.now()
    pks = [m.pk for m in batch]
    claimed = Message.objects.filter(pk__in=pks, local_state__in=PENDING, remote_id__isnull=True).update(
        local_state=LocalState.SENDING, local_attempts=F("local_attempts") + 1, local_state_changed=now
    )
    if claimed != len(batch):
        # Some changed meanwhile: a webhook echo stored its remote id (done), or an admin.
        fresh = dict(Message.objects.filter(pk__in=pks).values_list("pk", "remote_id"))
        for message in batch:
            if message.pk in fresh and fresh[message.pk] is not None:
                _flush([(message, None)])
        batch = [m for m in batch if m.pk in fresh and fresh[m.pk] is None]
    answers: list[tuple[Message, dict[str, Any] | None]] = []
    flushed = time.monotonic()
    for index, message in enumerate(batch):
        lease.keep()
        try:
            answers.append((message, _post(message, conversation, client, copies)))
        except Exception as exc:
            _flush(answers)
            rest = [m.pk for m in batch[index + 1 :]]
            if rest:  # never attempted: the claim did not count
                # Rows already "sending" before the claim keep that state: their earlier outcome
                # is still unknown, so they must be looked for before they are posted.
                unknown = [m.pk for m in batch[index + 1 :] if m.local_state == LocalState.SENDING]
                claimed_rest = Message.objects.filter(pk__in=rest, local_state=LocalState.SENDING)
                claimed_rest.exclude(pk__in=unknown).update(
                    local_state=LocalState.QUEUED, local_attempts=F("local_attempts") - 1
                )
                if unknown:
                    claimed_rest.filter(pk__in=unknown).update(local_attempts=F("local_attempts") - 1)
            outcome = record_failure(Message, message.pk, exc, message.local_attempts + 1)
            if outcome is not None:
                return outcome
            signal_failed(message.pk, exc)
            # A final error: the next messages go on, in a new batch.
            return RetryLater(0.0) if rest else None
        if time.monotonic() - flushed >= FLUSH_SECONDS:
            _flush(answers)
            answers, flushed = [], time.monotonic()
    _flush(answers)
    return None


#: Fields of our own message that the API response must not overwrite (ours are the truth).
_OWN_FIELDS = ("content", "message_type", "private", "source_id")

_MESSAGE_FIELDS = {f.name: f for f in Message._meta.concrete_fields}

#: Columns an answer of the platform fills in on our own message (``None`` keeps the value).
_ANSWER_FIELDS = (
    "remote_id",
    "content_type",
    "content_attributes",
    "raw",
    "status",
    "created_at",
    "updated_at",
    "sender_type",
    "sender_remote_id",
    "sender_name",
)


def _flush(answers: list[tuple[Message, dict[str, Any] | None]]) -> None:
    """Store the platform's answers and ``sent`` for several messages at once.

    Only rows that no webhook completed first get the answer's data (the webhook's is newer);
    the others get only the bookkeeping. ``message_sent`` follows for each. One parameterized
    statement run for all rows (``executemany``): building a ``CASE`` per row in the ORM costs
    more CPU than the requests themselves.
    """
    if not answers:
        return
    alias = router.db_for_write(Message)
    connection = connections[alias]

    def qn(name: str | None) -> str:
        return connection.ops.quote_name(str(name))

    now = timezone.now()
    done = {"local_state": LocalState.SENT, "local_error": "", "local_state_changed": now, "local_updated": now}
    fields = _MESSAGE_FIELDS

    def prep(name: str, value: Any) -> Any:
        return None if value is None else fields[name].get_db_prep_save(value, connection)

    assignments = [f"{qn(fields[n].column)} = COALESCE(%s, {qn(fields[n].column)})" for n in _ANSWER_FIELDS]
    assignments += [f"{qn(fields[n].column)} = %s" for n in done]
    table, pk, remote, state = (
        qn(Message._meta.db_table),
        qn(Message._meta.pk.column),
        qn(fields["remote_id"].column),
        qn(fields["local_state"].column),
    )
    # Identifiers come from the model (quoted), every value is a parameter.
    sets = ", ".join(assignments)
    sql = f"UPDATE {table} SET {sets} WHERE {pk} = %s AND {remote} IS NULL AND {state} IN (%s, %s)"  # noqa: S608
    rows = []
    for message, data in answers:
        if data is None:
            continue
        answer = {k: v for k, v in message_fields(data).items() if k in _ANSWER_FIELDS and v is not None}
        rows.append(
            [prep(n, answer.get(n)) for n in _ANSWER_FIELDS]
            + [prep(n, v) for n, v in done.items()]
            + [message.pk, LocalState.QUEUED.value, LocalState.SENDING.value]
        )
    pks = [m.pk for m, _ in answers]
    try:
        # All or nothing, so that the fallback below can redo them all. One row in autocommit
        # needs no transaction; inside one, a savepoint keeps it usable after the error.
        atomic = len(rows) > 1 or connection.in_atomic_block
        with transaction.atomic(using=alias) if atomic else contextlib.nullcontext():
            updated = 0
            if rows:
                with connection.cursor() as cursor:
                    cursor.executemany(sql, rows)
                    updated = cursor.rowcount
            if updated != len(answers):
                # Rows a webhook completed first (their remote id is stored): bookkeeping only.
                Message.objects.using(alias).filter(pk__in=pks, local_state__in=PENDING).update(**done)
    except IntegrityError:
        # A webhook stored an echo as a separate row: one message at a time, to fix that one.
        for message, data in answers:
            _mark_sent(message, data)
        return
    if signals.message_sent.has_listeners(Message):
        fresh = Message.objects.using(alias).in_bulk(pks)
        for message_pk in pks:
            if message_pk in fresh:
                fire(functools.partial(signals.message_sent.send, sender=Message, message=fresh[message_pk]))


def _mark_sent(message: Message, data: dict[str, Any] | None) -> None:
    """:func:`_flush` for one message, removing a duplicate row a webhook made of its echo."""
    now = timezone.now()
    done = {"local_state": LocalState.SENT, "local_error": "", "local_state_changed": now, "local_updated": now}
    pending = Message.objects.filter(pk=message.pk, local_state__in=PENDING)
    changed = 0
    if data is not None:
        fields = {k: v for k, v in message_fields(data).items() if k not in _OWN_FIELDS and v is not None}
        Message.objects.filter(
            conversation_id=message.conversation_id, remote_id=fields.get("remote_id"), local_state=LocalState.REMOTE
        ).filter(Q(source_id__isnull=True) | Q(source_id=message.source_id)).exclude(pk=message.pk).delete()
        changed = pending.filter(remote_id__isnull=True).update(**fields, **done)
    if not changed:
        changed = pending.update(**done)
    message.refresh_from_db()
    if changed and signals.message_sent.has_listeners(Message):
        fire(functools.partial(signals.message_sent.send, sender=Message, message=message))
