"""Webhook authenticity and the normalized event object handed to signal receivers.

The platform signs every API-channel delivery (Chatwoot 4.13+, unilink-api.md §0.5, §3.4)::

    X-Chatwoot-Timestamp: <unix seconds>
    X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
    X-Chatwoot-Delivery:  <uuid, new for every delivery>

:func:`verify_signature` checks that over the raw bytes, against every configured secret
(rotation), in constant time, within ``WEBHOOK_TOLERANCE`` seconds. Nothing here touches the
database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .exceptions import WebhookValidationError

if TYPE_CHECKING:
    from .models import Inbox, WebhookEvent

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
SIGNATURE_PREFIX = "sha256="


class EventName:
    """Event names the API channel receives (unilink-api.md §0.8), plus this app's own."""

    MESSAGE_CREATED = "message_created"
    MESSAGE_UPDATED = "message_updated"
    CONVERSATION_CREATED = "conversation_created"
    CONVERSATION_UPDATED = "conversation_updated"
    CONVERSATION_STATUS_CHANGED = "conversation_status_changed"
    CONVERSATION_TYPING_ON = "conversation_typing_on"
    CONVERSATION_TYPING_OFF = "conversation_typing_off"
    #: Not a platform event: data found by ``unilink_sync`` / the ``sync_inbox`` task.
    SYNC = "sync"

    ALL = (
        MESSAGE_CREATED,
        MESSAGE_UPDATED,
        CONVERSATION_CREATED,
        CONVERSATION_UPDATED,
        CONVERSATION_STATUS_CHANGED,
        CONVERSATION_TYPING_ON,
        CONVERSATION_TYPING_OFF,
    )


class SignatureError(WebhookValidationError):
    """The delivery is not authentic. ``reason`` is safe to show: it never names a secret."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def compute_signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Chatwoot-Signature`` value the platform sends for ``body`` at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_signature(
    body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    secrets: Iterable[str],
    tolerance: float,
    now: float | None = None,
) -> dt.datetime:
    """Check a delivery's signature; return the signed time (aware UTC) or raise :class:`SignatureError`.

    Every secret is tried (newest first while rotating), always all of them, so the time taken
    does not tell which one matched or how far a guess got.
    """
    secrets = tuple(s for s in secrets if s)
    if not secrets:
        raise SignatureError("this inbox has no webhook secret configured")
    if not signature or not timestamp:
        raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    timestamp = timestamp.strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds")
    signature = signature.strip()
    if not signature.startswith(SIGNATURE_PREFIX):
        raise SignatureError(f"{SIGNATURE_HEADER} must look like 'sha256=<hex>'")
    matched = False
    for secret in secrets:
        expected = compute_signature(secret, timestamp, body)
        # Why |= and no break: constant time over the whole list, not only per comparison.
        matched |= hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
    if not matched:
        raise SignatureError("signature does not match")
    # Checked after the HMAC so that a forged timestamp cannot be told apart from a stale one.
    signed = int(timestamp)
    current = time.time() if now is None else now
    if abs(current - signed) > float(tolerance):
        raise SignatureError(f"timestamp outside the tolerance of {int(float(tolerance))} seconds")
    return dt.datetime.fromtimestamp(signed, tz=dt.UTC)


def verify_url_token(given: str, expected: str) -> bool:
    """Constant-time comparison of the unsigned mode's URL token (an empty expected token never matches)."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class UnilinkEvent:
    """What happened on the platform, as handed to every receiving signal in ``event``.

    ``name`` is the platform's event name (``"message_created"``...) or ``"sync"`` for data
    found by the catch-up sync. ``payload`` is always the raw decoded JSON the platform sent
    (for ``"sync"``: the API object), the escape hatch for anything not mapped to a model.
    """

    name: str
    inbox: Inbox
    payload: dict[str, Any]
    #: When it happened on the platform (aware, UTC); the receive time when the payload has none.
    occurred_at: dt.datetime
    received_at: dt.datetime = field(default_factory=timezone.now)
    #: ``X-Chatwoot-Delivery``; ``None`` for sync and for platforms that do not send it.
    delivery_id: str | None = None
    #: The log row of the delivery; ``None`` for sync.
    webhook_event: WebhookEvent | None = field(default=None, repr=False, compare=False)

    @property
    def is_sync(self) -> bool:
        """True when the data came from the catch-up sync, not from a webhook."""
        return self.name == EventName.SYNC

    @property
    def inbox_key(self) -> str:
        return self.inbox.key
