"""The catch-up sync: mirror what webhooks missed, from the API (``manage.py unilink_sync``, ``sync_inbox``).

The platform delivers each webhook once and never retries, so a site that was down, slow or
misconfigured for a while has gaps. :func:`sync` pages through an inbox's conversations (every
status, newest activity first) and reads each one's messages after the last one known here.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from . import conf, signals
from .encoding import parse_timestamp
from .mirror import Context, send_after_commit, source_id_of, upsert_conversation, upsert_message
from .models import Conversation, Inbox
from .webhooks import EventName, UnilinkEvent

logger = logging.getLogger("django_unilink.sync")

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_since(value: str | dt.datetime | None) -> dt.datetime | None:
    """``--since``: an aware datetime from ISO date(-time) text or a relative age (``90m``, ``2h``, ``7d``)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    match = _RELATIVE.match(value)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
        return timezone.now() - dt.timedelta(**{unit: int(match.group(1))})
    try:
        date = dt.date.fromisoformat(value.strip())
    except ValueError:
        pass
    else:
        return dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)
    try:
        parsed = parse_timestamp(value, field="since")
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"since: {value!r} is not a date (2026-06-18), a date and time, or an age like 2h or 7d")
    return parsed


@dataclass
class SyncResult:
    """Counts of one inbox's sync. ``failures`` are one line each, without secrets."""

    inbox: str
    conversations: int = 0
    conversations_created: int = 0
    messages_created: int = 0
    messages_updated: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "inbox": self.inbox,
            "conversations": self.conversations,
            "conversations_created": self.conversations_created,
            "messages_created": self.messages_created,
            "messages_updated": self.messages_updated,
            "failures": list(self.failures),
        }


def _contact_inbox_source(client: Any, inbox: Inbox, data: dict[str, Any]) -> str | None:
    """The source_id of an unknown conversation's contact inbox, asking the platform when the listing lacks it."""
    source_id = source_id_of(data)
    if source_id:
        return source_id
    sender = (data.get("meta") or {}).get("sender") or {}
    if not sender.get("id"):
        return None
    contact = client.get_contact(int(sender["id"]))
    contact = contact.get("payload", contact) if isinstance(contact, dict) else {}
    sources = [
        ci.get("source_id")
        for ci in contact.get("contact_inboxes") or ()
        if isinstance(ci, dict) and (ci.get("inbox") or {}).get("id") == inbox.remote_id and ci.get("source_id")
    ]
    return sources[0] if len(sources) == 1 else None


def _sync_conversation(
    client: Any, inbox: Inbox, data: dict[str, Any], result: SyncResult, *, since: dt.datetime | None, full: bool
) -> None:
    remote_id = int(data["id"])
    local = Conversation.objects.filter(inbox=inbox, remote_id=remote_id).first()
    hint = None if local is not None else _contact_inbox_source(client, inbox, data)
    after = 0
    if local is not None and not full:
        known = local.messages.filter(remote_id__isnull=False)
        if since is not None:
            # Re-read the whole window: a delivery missed between two received ones has a lower id.
            known = known.filter(created_at__lt=since)
        after = known.aggregate(last=Max("remote_id"))["last"] or 0
    # API calls before the transaction: no locks held while waiting for the network.
    remote_messages = list(client.iter_messages(remote_id, after=after))
    now = timezone.now()
    with transaction.atomic():
        ctx = Context(
            inbox=inbox,
            event=UnilinkEvent(name=EventName.SYNC, inbox=inbox, payload=data, occurred_at=now, received_at=now),
            quiet_updates=True,
        )
        conversation = upsert_conversation(ctx, data, source_id_hint=hint)
        if any(signal is signals.conversation_created for signal, _, _ in ctx.pending):
            result.conversations_created += 1
        for item in remote_messages:
            if not isinstance(item, dict):
                continue
            when = _safe_time(item.get("created_at"), now)
            message_event = UnilinkEvent(
                name=EventName.SYNC, inbox=inbox, payload=item, occurred_at=when, received_at=now
            )
            _message, outcome = upsert_message(ctx, item, conversation, event=message_event)
            if outcome == "created":
                result.messages_created += 1
            elif outcome != "unchanged":
                result.messages_updated += 1
        send_after_commit(ctx.pending, None)
    result.conversations += 1


def _safe_time(value: Any, fallback: dt.datetime) -> dt.datetime:
    try:
        return parse_timestamp(value) or fallback
    except ValueError:
        return fallback


def _listed(client: Any, inbox: Inbox, result: SyncResult) -> Iterator[dict[str, Any]]:
    """The inbox's conversations, every status, newest activity first; a failed page ends the listing."""
    pages = client.list_conversations(status="all", inbox_id=inbox.remote_id)
    while True:
        try:
            yield next(pages)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - cannot list further: report, keep what was done
            result.failures.append(f"listing conversations: {type(exc).__name__}: {exc}")
            logger.error("Sync of inbox %r: listing conversations failed with %s.", result.inbox, type(exc).__name__)
            return


def _requested(client: Any, conversation_ids: Iterable[int], result: SyncResult) -> Iterator[dict[str, Any]]:
    """The conversations asked for by id; one that cannot be read is reported and skipped."""
    for conversation_id in conversation_ids:
        try:
            yield client.get_conversation(int(conversation_id))
        except Exception as exc:  # noqa: BLE001 - report, go on with the others
            result.failures.append(f"conversation {conversation_id}: {type(exc).__name__}: {exc}")


def sync(
    inbox_key: str = conf.DEFAULT_INBOX,
    *,
    since: dt.datetime | None = None,
    conversation_ids: Iterable[int] | None = None,
    full: bool = False,
    client: Any = None,
    progress: Callable[[SyncResult], None] | None = None,
) -> SyncResult:
    """Mirror what webhooks missed for one inbox: conversations (every status) and their new messages.

    Known objects are refreshed quietly; new ones send ``conversation_created`` /
    ``message_received`` with ``event.name == "sync"``. Messages are read with
    ``after=<last known message id>`` (from the start of the ``since`` window when given; from
    the first message with ``full``). One failing conversation does not stop the others; they
    are listed in ``failures``. ``client`` defaults to a
    :class:`~django_unilink.client.UnilinkClient` for the inbox (closed afterwards).
    """
    from .client import UnilinkClient

    result = SyncResult(inbox=inbox_key)
    config = conf.get_inbox_config(inbox_key)
    inbox = Inbox.objects.for_key(inbox_key)
    own_client = client is None
    client = client or UnilinkClient.from_config(config)
    conversations = _requested(client, conversation_ids, result) if conversation_ids else _listed(client, inbox, result)
    try:
        for data in conversations:
            if not isinstance(data, dict) or not isinstance(data.get("id"), int):
                result.failures.append("listing conversations: an item without an integer id")
                continue
            if since is not None and not conversation_ids:
                last = _safe_time(data.get("last_activity_at") or data.get("timestamp"), timezone.now())
                if last < since:
                    break  # listed by last activity, newest first: the rest is older
            try:
                _sync_conversation(client, inbox, data, result, since=since, full=full)
            except Exception as exc:  # noqa: BLE001 - keep going; report at the end
                result.failures.append(f"conversation {data.get('id')}: {type(exc).__name__}: {exc}")
                logger.error(
                    "Sync of inbox %r: conversation %s failed with %s.", inbox_key, data.get("id"), type(exc).__name__
                )
            if progress is not None:
                progress(result)
    finally:
        if own_client:
            client.close()
    return result
