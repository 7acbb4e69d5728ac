"""Webhook processing: validate a stored delivery, mirror it, signal; plus replay, purge and the tasks.

Every delivery is processed in **one** transaction (all or nothing) holding a lock on its
``WebhookEvent`` row; the mirroring rules (idempotent, order-tolerant, race-safe) live in
:mod:`django_unilink.mirror`, the catch-up sync in :mod:`django_unilink.sync`. Payload
validation uses the DRF serializers of :mod:`django_unilink.serializers`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from celery import shared_task
from django.db import OperationalError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import conf, signals
from .encoding import parse_timestamp
from .exceptions import WebhookValidationError
from .mirror import (
    Context,
    ProcessingError,
    normalize_changed_attributes,
    send_after_commit,
    send_signals,
    upsert_conversation,
    upsert_message,
)
from .models import Conversation, Inbox, WebhookEvent
from .serializers import EVENT_SERIALIZERS, flatten_errors
from .sync import parse_since, sync
from .webhooks import EventName, UnilinkEvent

logger = logging.getLogger("django_unilink.receiving")

State = WebhookEvent.State

#: Keys of an event payload that describe the event, not the object.
EVENT_KEYS = ("event", "changed_attributes")

__all__ = ["ProcessingError", "PayloadError", "process", "process_webhook_event", "replay", "sync_inbox"]


class PayloadError(WebhookValidationError):
    """A payload has the wrong shape. ``fields`` maps dotted field paths to messages."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        self.fields = fields or {}
        super().__init__(message)


# -- payload checks (shared by the view and by replay) -------------------------------------------

MAX_DEPTH = 64
_SUSPICIOUS_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def decode_payload(body: bytes | str) -> dict[str, Any]:
    """Decode and sanity-check a webhook body, or raise :class:`PayloadError`.

    Refuses what would break storage later: NaN/Infinity, strings with NUL characters or lone
    surrogates (PostgreSQL rejects both), absurd nesting.
    """
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise PayloadError("the JSON is nested too deeply") from None
    except ValueError as exc:
        raise PayloadError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object")
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise PayloadError("the body has no event name", {"event": ["Expected a non-empty string."]})
    # NUL and lone surrogates can only come from \u escapes (strict UTF-8 decoding refused the
    # rest), and nesting needs brackets: most bodies need no walk at all.
    suspicious = _SUSPICIOUS_ESCAPE.search(text) or text.count("{") + text.count("[") > MAX_DEPTH
    problem = _unstorable(data) if suspicious else None
    if problem:
        raise PayloadError(f"{problem[0]}: {problem[1]}", {problem[0]: [problem[1]]})
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _unstorable(data: Any) -> tuple[str, str] | None:
    """The first value the database could not store, as ``(path, reason)``; iterative, bounded depth."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path or "payload", f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            reason = _bad_text(value)
            if reason:
                return path or "payload", reason
        elif isinstance(value, dict):
            for key, item in value.items():
                reason = _bad_text(key)
                shown = key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
                child = f"{path}.{shown}" if path else shown
                if reason:
                    return child, f"key {reason}"
                stack.append((item, child, depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append((item, f"{path}.{index}" if path else str(index), depth + 1))
    return None


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():  # the encode below only for the rare non-ASCII text
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate"
    return None


def validate_payload(data: dict[str, Any], config: conf.InboxConfig) -> None:
    """Check the shape of a known event and that it belongs to ``config``'s inbox; raise :class:`PayloadError`.

    Unknown event names pass (they are logged and ignored).
    """
    serializer_class = EVENT_SERIALIZERS.get(data["event"])
    if serializer_class is None:
        return
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        fields = flatten_errors(serializer.errors)
        first = next(iter(fields.items()))
        raise PayloadError(f"invalid {data['event']} payload: {first[0]}: {first[1][0]}", fields)
    # Why the serializer decides: a conversation event may carry an unvalidated extra
    # "conversation" key (any JSON), which must neither be read nor replace the real one.
    _check_belongs(data, config, nested="conversation" in serializer.fields)


def _check_belongs(data: dict[str, Any], config: conf.InboxConfig, *, nested: bool) -> None:
    """A delivery for another inbox or account is refused: the URL or the settings are wrong.

    ``nested``: the conversation is ``data["conversation"]`` (message and typing events), not ``data``.
    """
    conversation: dict[str, Any] = data["conversation"] if nested else data
    candidates = [
        ("inbox.id", _id_of(data.get("inbox")), config.inbox_id, "INBOX_ID"),
        (
            "conversation.inbox_id" if nested else "inbox_id",
            conversation.get("inbox_id"),
            config.inbox_id,
            "INBOX_ID",
        ),
        ("account.id", _id_of(data.get("account")), config.account_id, "ACCOUNT_ID"),
    ]
    if nested:
        candidates.append(
            ("conversation.account.id", _id_of(conversation.get("account")), config.account_id, "ACCOUNT_ID")
        )
    for path, value, expected, key in candidates:
        if value is None:
            continue
        try:
            matches = int(value) == conf.as_int(expected)
        except (TypeError, ValueError):
            matches = False
        if not matches:
            message = (
                f"{path} is {value}, but this URL is for inbox {config.key!r} ({key} {expected}); "
                f"point the platform at the right URL or fix {config.setting_name(key)}"
            )
            raise PayloadError(message, {path: [message]})


def _id_of(value: Any) -> Any:
    """``value["id"]``, or ``None`` when ``value`` is not an object (keys no serializer declares may be anything)."""
    return value.get("id") if isinstance(value, dict) else None


# -- event handlers ------------------------------------------------------------------------------


def _strip(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in keys}


def handle_message(ctx: Context, payload: dict[str, Any]) -> None:
    """``message_created`` / ``message_updated``."""
    conversation_data = payload["conversation"]
    conversation = upsert_conversation(ctx, conversation_data, source_ids=[payload.get("source_id")])
    nested = next(
        (m for m in conversation_data.get("messages") or () if isinstance(m, dict) and m.get("id") == payload["id"]),
        None,
    )
    upsert_message(
        ctx,
        _strip(payload, "event", "conversation"),
        conversation,
        nested=nested,
        signal_updates=payload["event"] == EventName.MESSAGE_UPDATED,
    )


def handle_conversation(ctx: Context, payload: dict[str, Any]) -> None:
    """``conversation_created`` / ``conversation_updated`` / ``conversation_status_changed``."""
    upsert_conversation(
        ctx,
        _strip(payload, *EVENT_KEYS),
        event_changes=normalize_changed_attributes(payload.get("changed_attributes")),
    )


def handle_typing(ctx: Context, payload: dict[str, Any]) -> None:
    """``conversation_typing_on`` / ``_off``: signalled once, never on a replay (it is stale by then)."""
    conversation = upsert_conversation(ctx, payload["conversation"])
    if ctx.first_attempt and not _resent(ctx.event.webhook_event):
        ctx.emit(
            signals.typing,
            Conversation,
            conversation=conversation,
            is_typing=payload["event"] == EventName.CONVERSATION_TYPING_ON,
            user=payload.get("user"),
        )


def _resent(row: WebhookEvent | None) -> bool:
    """Whether ``row`` repeats an earlier verified delivery byte for byte under another delivery id.

    Why: the signature does not cover ``X-Chatwoot-Delivery``, so a captured delivery replayed
    within the tolerance is a new row; the mirror dedupes everything else, but typing has no state.
    """
    if row is None or row.signed_at is None:
        return False
    earlier = WebhookEvent.objects.filter(
        pk__lt=row.pk, valid=True, inbox_key=row.inbox_key, signed_at=row.signed_at, body=row.body
    )
    return earlier.exists()


#: Event name -> handler. Anything else is stored, answered 200 and marked ``ignored``.
HANDLERS: dict[str, Callable[[Context, dict[str, Any]], None]] = {
    EventName.MESSAGE_CREATED: handle_message,
    EventName.MESSAGE_UPDATED: handle_message,
    EventName.CONVERSATION_CREATED: handle_conversation,
    EventName.CONVERSATION_UPDATED: handle_conversation,
    EventName.CONVERSATION_STATUS_CHANGED: handle_conversation,
    EventName.CONVERSATION_TYPING_ON: handle_typing,
    EventName.CONVERSATION_TYPING_OFF: handle_typing,
}


def occurred_at(payload: dict[str, Any], fallback: dt.datetime) -> dt.datetime:
    """When the event happened on the platform, from the payload; ``fallback`` when it does not say."""
    name = payload.get("event")
    candidates: list[Any] = []
    if name == EventName.MESSAGE_UPDATED:
        nested = [
            m
            for m in (payload.get("conversation") or {}).get("messages") or ()
            if isinstance(m, dict) and m.get("id") == payload.get("id")
        ]
        candidates += [m.get("updated_at") for m in nested]
    elif name == EventName.MESSAGE_CREATED:
        candidates.append(payload.get("created_at"))
    elif name in (
        EventName.CONVERSATION_CREATED,
        EventName.CONVERSATION_UPDATED,
        EventName.CONVERSATION_STATUS_CHANGED,
    ):
        candidates.append(payload.get("updated_at"))
    for value in candidates:
        try:
            parsed = parse_timestamp(value)
        except ValueError:
            continue
        if parsed is not None:
            return parsed
    return fallback


# -- processing entry points ---------------------------------------------------------------------


def inbox_for(key: str) -> Inbox:
    """The Inbox row of configured inbox ``key``: one query when it exists and matches the settings."""
    config = conf.get_inbox_config(key)
    row = Inbox.objects.select_related("account").filter(key=key).first()
    if (
        row is not None
        and row.remote_id == conf.as_int(config.inbox_id)
        and row.account.remote_id == conf.as_int(config.account_id)
        and row.account.base_url == config.api_base
    ):
        return row
    return Inbox.objects.for_key(key)


def process(webhook_event: WebhookEvent | int, *, replay: bool = False, raise_errors: bool = False) -> WebhookEvent:
    """Process one stored delivery now, in one transaction; return the row with its new state.

    A row already processed is left alone unless ``replay``. Unverified rows are never
    processed. Errors are recorded on the row (state ``failed``, ``last_error``, ``traceback``)
    and not raised unless ``raise_errors``.
    """
    pk = webhook_event if isinstance(webhook_event, int) else webhook_event.pk
    try:
        with transaction.atomic():
            row = WebhookEvent.objects.select_for_update().get(pk=pk)
            if not row.valid:
                logger.warning("Webhook event %s was not verified; refusing to process it.", pk)
                return row
            if row.state in (State.PROCESSED, State.IGNORED) and not replay:
                return row  # e.g. a task delivered twice by the broker
            row.attempts += 1
            inbox = inbox_for(row.inbox_key)
            if row.inbox_id != inbox.pk:
                row.inbox = inbox  # linked now: the view does not spend a query on it
                row.save(update_fields=["inbox"])
            try:
                payload = decode_payload(row.body)
                validate_payload(payload, inbox.config)
            except PayloadError as exc:
                row.state, row.invalid_reason = State.INVALID, str(exc)[:255]
                row.save(update_fields=["state", "invalid_reason", "attempts"])
                return row
            # A former processing failure is cleared by this success; an error of a signal
            # receiver (recorded while the row was not failed) stays visible.
            clear_error = row.state == State.FAILED
            name = payload["event"]
            handler = HANDLERS.get(name)
            ctx = Context(
                inbox=inbox,
                event=UnilinkEvent(
                    name=name,
                    inbox=inbox,
                    payload=payload,
                    occurred_at=occurred_at(payload, row.signed_at or row.received_at),
                    received_at=row.received_at,
                    delivery_id=row.delivery_id,
                    webhook_event=row,
                ),
                first_attempt=row.attempts == 1,
            )
            if handler is None:
                logger.info("Ignored webhook event %s: unknown event %r.", pk, name[:100])
                row.state = State.IGNORED
            else:
                handler(ctx, payload)
                row.state = State.PROCESSED
            if clear_error:
                row.last_error, row.traceback = "", ""
            row.invalid_reason = ""
            row.processed_at = timezone.now()
            row.save(update_fields=["state", "attempts", "last_error", "traceback", "invalid_reason", "processed_at"])
            send_after_commit(ctx.pending, pk)
            return row
    except Exception as exc:
        # The transaction rolled back: no partial mirror. Keep the error on the row for replay.
        WebhookEvent.objects.filter(pk=pk).update(
            state=State.FAILED,
            attempts=row_attempts(pk) + 1,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            traceback=traceback.format_exc(),
        )
        logger.error("Processing webhook event %s failed with %s; see its row in the admin.", pk, type(exc).__name__)
        if raise_errors:
            raise
        return WebhookEvent.objects.get(pk=pk)


def row_attempts(pk: int) -> int:
    return WebhookEvent.objects.filter(pk=pk).values_list("attempts", flat=True).first() or 0


@shared_task(
    name="django_unilink.process_webhook_event",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def process_webhook_event(event_pk: int) -> str:
    """Celery task: process a stored delivery. Its only argument is the row's primary key.

    ``acks_late``: a worker killed mid-task leaves the message to another worker; processing is
    idempotent. Database hiccups (``OperationalError``, e.g. a deadlock) retry with backoff.
    """
    try:
        row = process(event_pk, raise_errors=True)
    except OperationalError:
        raise
    except WebhookEvent.DoesNotExist:
        logger.warning("Webhook event %s no longer exists (purged?).", event_pk)
        return "missing"
    except Exception:  # recorded on the row by process()
        return State.FAILED
    return row.state


def processing_mode() -> str:
    """``"inline"`` or ``"celery"``, from ``WEBHOOK_PROCESSING``.

    ``"auto"`` means Celery when the current Celery app has a ``broker_url`` configured and is
    not in eager mode (``task_always_eager``); inline otherwise (no broker, or tests).
    """
    mode = conf.get_setting("WEBHOOK_PROCESSING")
    if mode in ("inline", "celery"):
        return mode
    if mode != "auto":
        raise conf.ConfigurationError(
            f"UNILINK['WEBHOOK_PROCESSING'] must be 'auto', 'celery' or 'inline', not {mode!r}."
        )
    from celery import current_app

    app_conf = current_app.conf
    return "celery" if app_conf.broker_url and not app_conf.task_always_eager else "inline"


def _task_options() -> dict[str, Any]:
    queue = conf.get_setting("CELERY_QUEUE")
    return {"queue": queue} if queue else {}


def dispatch(webhook_event: WebhookEvent) -> str:
    """Process a freshly stored delivery inline, or queue it after the commit; return the resulting state.

    If the broker cannot take the task, the delivery is processed inline instead: it must not be
    lost, and the platform must still get its 200.
    """
    if processing_mode() == "inline":
        return process(webhook_event).state

    def enqueue() -> None:
        try:
            # retry=False: fail at once instead of holding the platform's 5 s while the broker is down.
            process_webhook_event.apply_async((webhook_event.pk,), retry=False, **_task_options())
        except Exception as exc:  # noqa: BLE001 - any broker failure
            logger.warning(
                "Could not queue webhook event %s (%s); processing it inline.", webhook_event.pk, type(exc).__name__
            )
            process(webhook_event.pk)

    transaction.on_commit(enqueue)
    return State.RECEIVED


def announce(webhook_event: WebhookEvent) -> None:
    """Send ``webhook_received`` for a new verified delivery, once its row is committed."""
    event_pk = webhook_event.pk
    transaction.on_commit(
        lambda: send_signals([(signals.webhook_received, WebhookEvent, {"webhook_event": webhook_event})], event_pk)
    )


# -- replay and purge ----------------------------------------------------------------------------


@dataclass
class ReplayResult:
    processed: int = 0
    failed: int = 0
    skipped: int = 0
    states: dict[int, str] = field(default_factory=dict)


def replay(events: Iterable[WebhookEvent | int]) -> ReplayResult:
    """Process stored deliveries again, inline, one transaction each. Unverified rows are skipped.

    Safe on rows processed already: the mirror's dedupe makes a replay change nothing that is
    current and send no second signal.
    """
    result = ReplayResult()
    for item in events:
        pk = item if isinstance(item, int) else item.pk
        row = process(pk, replay=True)
        result.states[pk] = row.state
        if not row.valid or row.state == State.INVALID:
            result.skipped += 1
        elif row.state == State.FAILED:
            result.failed += 1
        else:
            result.processed += 1
    return result


def replay_events_action(modeladmin: Any, request: Any, queryset: QuerySet[WebhookEvent]) -> None:
    """Admin action: replay the selected deliveries now and report the outcome."""
    from django.contrib import messages

    result = replay(queryset.order_by("received_at", "pk").values_list("pk", flat=True))
    level = messages.ERROR if result.failed else messages.SUCCESS
    modeladmin.message_user(
        request,
        f"Replayed: {result.processed} processed, {result.failed} failed, {result.skipped} skipped "
        "(unverified or invalid).",
        level,
    )


# What @admin.action(description=...) sets; done by hand so this module never imports the admin.
replay_events_action.short_description = "Replay selected webhook events (process them again)"  # type: ignore[attr-defined]
# Replay writes (mirror rows, signals): staff who may only view the log must not run it.
replay_events_action.allowed_permissions = ("change",)  # type: ignore[attr-defined]


def purge_webhook_events(days: int | None = None, *, batch_size: int = 1000) -> int:
    """Delete webhook log rows received more than ``days`` days ago (default ``WEBHOOK_LOG_DAYS``)."""
    if days is None:
        days = int(conf.get_setting("WEBHOOK_LOG_DAYS"))
    if days < 0:
        raise ValueError("days must be 0 or more")
    cutoff = timezone.now() - dt.timedelta(days=days)
    total = 0
    while True:  # in batches: short transactions, no giant DELETE on a big log
        pks = list(WebhookEvent.objects.filter(received_at__lt=cutoff).values_list("pk", flat=True)[:batch_size])
        if not pks:
            return total
        total += WebhookEvent.objects.filter(pk__in=pks).delete()[0]


@shared_task(name="django_unilink.purge_webhook_log")
def purge_webhook_log(days: int | None = None) -> int:
    """Celery task for a beat schedule: :func:`purge_webhook_events`."""
    return purge_webhook_events(days)


@shared_task(name="django_unilink.sync_inbox")
def sync_inbox(
    inbox: str | None = None, since: str | None = None, conversation: int | None = None, full: bool = False
) -> list[dict[str, Any]]:
    """Celery task for a beat schedule: :func:`sync` for one inbox, or every configured inbox.

    ``since`` is text (``"2h"``, ``"2026-06-18"``) so schedules stay JSON-serializable.
    """
    keys = [inbox] if inbox else list(conf.inbox_configs())
    when = parse_since(since)
    ids = [conversation] if conversation else None
    return [sync(key, since=when, conversation_ids=ids, full=full).as_dict() for key in keys]
