"""Signed webhook deliveries for tests: sign bodies, build payloads, post them through the real URL.

::

    from django_unilink.testing.webhooks import build_payload, post_webhook

    def test_agent_reply_reaches_the_user(client, db):
        payload = build_payload("message_created", content="Hello!", conversation__id=12)
        response = post_webhook(client, "default", payload)
        assert response.status_code == 200

Payloads start from the example deliveries shipped in ``webhook_examples/`` (exact platform
shapes, unilink-api.md §3.3). Secrets are read from settings at call time.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from django.db import connection
from django.test import TestCase
from django.urls import reverse

from .. import conf
from ..webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature

#: Example name for each event name (``build_payload("message_created")`` is an agent's reply).
DEFAULT_EXAMPLES = {
    "message_created": "message_created_outgoing",
    "message_updated": "message_updated",
    "conversation_created": "conversation_created",
    "conversation_updated": "conversation_updated",
    "conversation_status_changed": "conversation_status_changed",
    "conversation_typing_on": "conversation_typing_on",
    "conversation_typing_off": "conversation_typing_on",
    "contact_created": "contact_created",
}


def example_names() -> list[str]:
    """Names of the shipped example deliveries (file names without ``.json``)."""
    folder = resources.files("django_unilink.testing").joinpath("webhook_examples")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


@cache
def _example_text(name: str) -> str:
    folder = resources.files("django_unilink.testing").joinpath("webhook_examples")
    return folder.joinpath(f"{name}.json").read_text(encoding="utf-8")


def load_example(name: str) -> dict[str, Any]:
    """A fresh copy of one example delivery, e.g. ``load_example("message_created_incoming")``."""
    if name not in example_names():
        raise ValueError(f"No example delivery {name!r}; known: {', '.join(example_names())}.")
    return json.loads(_example_text(name))


def build_payload(event: str, /, **overrides: Any) -> dict[str, Any]:
    """An example payload for ``event`` (an event name or an example name) with ``overrides`` applied.

    Override nested keys with ``__`` as the path separator and list indexes as numbers::

        build_payload("message_created", id=9999, content="Hi", conversation__id=13,
                      conversation__messages__0__id=9999)

    ``conversation_typing_off`` is built from the typing-on example with its event renamed.
    """
    name = DEFAULT_EXAMPLES.get(event, event)
    payload = load_example(name)
    if event in DEFAULT_EXAMPLES and payload.get("event") != event:
        payload["event"] = event
    for path, value in overrides.items():
        _set_path(payload, path.split("__"), copy.deepcopy(value))
    return payload


def _set_path(target: Any, parts: list[str], value: Any) -> None:
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        key: Any = int(part) if isinstance(target, list) else part
        if last:
            target[key] = value
        else:
            target = target[key]


def sign(body: bytes, secret: str, timestamp: int | None = None, *, delivery_id: str | None = None) -> dict[str, str]:
    """The headers the platform sends with ``body``: timestamp, signature and a delivery id.

    ``timestamp`` defaults to now; ``delivery_id`` to a new UUID (pass your own to test dedupe).
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: compute_signature(secret, ts, body),
        DELIVERY_HEADER: delivery_id or str(uuid.uuid4()),
    }


def encode(payload: dict[str, Any] | bytes | str) -> bytes:
    """Compact JSON like the platform's (``bytes`` and ``str`` are taken as already encoded)."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def webhook_url(inbox_key: str = conf.DEFAULT_INBOX, *, url_token: str | None = None) -> str:
    """The webhook path of an inbox (the unsigned-mode path when ``url_token`` is given)."""
    if url_token is not None:
        return reverse("unilink:webhook-unsigned", kwargs={"inbox": inbox_key, "token": url_token})
    return reverse("unilink:webhook", kwargs={"inbox": inbox_key})


def post_webhook(
    client: Any,
    inbox_key: str,
    payload: dict[str, Any] | bytes | str,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    delivery_id: str | None = None,
    signed: bool = True,
    url_token: str | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    run_on_commit: bool = True,
) -> Any:
    """POST a delivery through the real URL with Django's test ``client``; return the response.

    ``secret`` defaults to the inbox's first configured secret (read now). ``signed=False``
    sends no signature headers. ``headers`` are added last (to break a signature on purpose).

    Inside a test transaction (``TestCase``, pytest-django's ``db``) the on-commit callbacks
    that send signals and queue tasks would never run; with ``run_on_commit`` (the default)
    they are executed before this returns, as they would be in production.
    """
    body = encode(payload)
    sent_headers: dict[str, str] = {}
    if signed:
        if secret is None:
            secrets = conf.get_inbox_config(inbox_key).webhook_secrets
            if not secrets:
                raise ValueError(f"Inbox {inbox_key!r} has no WEBHOOK_SECRET; pass secret= or signed=False.")
            secret = secrets[0]
        sent_headers.update(sign(body, secret, timestamp, delivery_id=delivery_id))
    elif delivery_id is not None:
        sent_headers[DELIVERY_HEADER] = delivery_id
    sent_headers.update(headers or {})
    url = webhook_url(inbox_key, url_token=url_token)
    capture = (
        TestCase.captureOnCommitCallbacks(execute=True)
        if run_on_commit and connection.in_atomic_block
        else nullcontext()
    )
    with capture:
        return client.post(url, data=body, content_type=content_type, headers=sent_headers)


@dataclass(frozen=True)
class SignalCall:
    """One signal sent: its name in :mod:`django_unilink.signals`, ``sender`` and keyword arguments."""

    name: str
    sender: Any
    kwargs: dict[str, Any]


#: Every signal a delivery can send, by name.
RECEIVING_SIGNALS = (
    "webhook_received",
    "message_received",
    "message_updated",
    "conversation_created",
    "conversation_updated",
    "conversation_status_changed",
    "typing",
)


@contextmanager
def record_signals(*names: str) -> Iterator[list[SignalCall]]:
    """Record the receiving signals sent inside the block (all of them, or those named)::

        with record_signals("message_received") as calls:
            post_webhook(client, "default", build_payload("message_created"))
        assert [c.kwargs["message"].content for c in calls] == [...]

    ``kwargs`` exclude Django's own ``signal`` argument.
    """
    from .. import signals

    calls: list[SignalCall] = []
    connected = []
    for name in names or RECEIVING_SIGNALS:
        signal = getattr(signals, name)

        def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            calls.append(SignalCall(_name, sender, kwargs))

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
    try:
        yield calls
    finally:
        for signal, receiver in connected:
            signal.disconnect(receiver)
