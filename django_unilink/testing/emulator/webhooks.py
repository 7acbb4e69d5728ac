"""Webhook delivery to each inbox's ``webhook_url``, as ``lib/webhooks/trigger.rb`` does it (§3.4).

One background worker takes events off a FIFO queue, builds the payload from the state at that
moment (§3.1: built at job time), signs it, and POSTs it once with a 5 s open/read timeout. A
failed delivery of ``message_created``/``message_updated`` marks the message failed and queues a
``message_updated`` (§3.4 "On failure").
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from . import shapes
from .errors import reason
from .state import Event

if TYPE_CHECKING:
    from .state import Store


def sign(secret: str, timestamp: str, raw_body: bytes) -> str:
    """``X-Chatwoot-Signature``: ``sha256=`` + hex HMAC-SHA256(secret, "<ts>." + raw body) (§3.4)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + raw_body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def build_payload(store: Store, event: Event) -> dict[str, Any] | None:
    """The webhook body for ``event`` from the current state (caller holds the lock)."""
    if event.kind == "message":
        message = store.messages.get(event.ref)
        if message is None:
            return None
        payload = shapes.message_webhook(store, message)
    elif event.kind == "conversation":
        payload = shapes.conversation_webhook(store, store.conversations[event.ref])
    else:  # typing: {event, user, conversation, is_private}
        return {
            "event": event.event,
            "user": shapes.user_webhook(store.user),
            "conversation": shapes.conversation_webhook(store, store.conversations[event.ref]),
            "is_private": bool(event.extra.get("is_private", False)),
        }
    payload["event"] = event.event
    if event.has_changed_attributes:
        payload["changed_attributes"] = event.changed_attributes
    return payload


def describe_failure(url: str, exc: Exception) -> str:
    """An ``external_error`` text like the Ruby exception message the platform stores."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if isinstance(exc, requests.ConnectTimeout):
        return "Net::OpenTimeout"
    if isinstance(exc, requests.ReadTimeout):
        return "Net::ReadTimeout with #<TCPSocket:(closed)>"
    text = str(exc)
    if isinstance(exc, requests.ConnectionError) and "refused" in text.lower():
        return (
            f'Failed to open TCP connection to {host}:{port} (Connection refused - connect(2) for "{host}" port {port})'
        )
    if isinstance(exc, requests.ConnectionError):
        return "Connection reset by peer"
    return f"{type(exc).__name__}: {text}"


class WebhookDispatcher:
    """The delivery queue and its worker thread."""

    def __init__(self, store: Store, timeout: float = 5.0) -> None:
        self.store = store
        self.timeout = timeout
        self.deliveries: list[dict[str, Any]] = []
        self._queue: collections.deque[Event] = collections.deque()
        self._cond = threading.Condition()
        self._busy = 0  # queued + in flight
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="unilink-emulator-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)

    def enqueue(self, event: Event) -> None:
        inbox = self.store.inboxes.get(event.inbox_id)
        if inbox is None or not inbox.webhook_url:
            return  # no API-channel URL: the platform sends nothing (§3.1)
        with self._cond:
            self._queue.append(event)
            self._busy += 1
            self._cond.notify_all()

    def clear(self) -> None:
        """Drop deliveries not yet started."""
        with self._cond:
            self._busy -= len(self._queue)
            self._queue.clear()
            self._cond.notify_all()

    def wait(self, timeout: float) -> None:
        """Block until every queued delivery (and those it caused) has been attempted."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self._busy} webhook deliveries still pending after {timeout} s")
                self._cond.wait(left)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                event = self._queue.popleft()
            try:
                self._deliver(event)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, event: Event) -> None:
        with self.store.lock:
            inbox = self.store.inboxes.get(event.inbox_id)
            if inbox is None or not inbox.webhook_url:
                return
            url, secret = inbox.webhook_url, inbox.secret
            payload = build_payload(self.store, event)
        if payload is None:
            return
        raw = shapes.dumps(payload)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "Ruby",
            "X-Chatwoot-Delivery": str(uuid.uuid4()),
            "X-Chatwoot-Timestamp": timestamp,
            "X-Chatwoot-Signature": sign(secret, timestamp, raw),
        }
        record: dict[str, Any] = {
            "event": event.event,
            "url": url,
            "status": None,
            "error": None,
            "delivery_id": headers["X-Chatwoot-Delivery"],
            "headers": headers,
            "body": payload,
            "raw": raw,
        }
        try:
            # A fresh connection per delivery, like Net::HTTP (a pooled one could be stale).
            response = requests.post(url, data=raw, headers=headers, timeout=(self.timeout, self.timeout))
            record["status"] = response.status_code
            if not 200 <= response.status_code < 300:
                record["error"] = f"{response.status_code} {response.reason or reason(response.status_code)}"
        except requests.RequestException as exc:
            record["error"] = describe_failure(url, exc)
        with self._cond:
            self.deliveries.append(record)
        if record["error"] and event.kind == "message":
            # §3.4: Messages::StatusUpdateService marks the message failed; that fires message_updated.
            self.store.mark_delivery_failed(event.ref, record["error"])
