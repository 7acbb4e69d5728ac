"""Hypothesis: signed but malformed deliveries never cause a 5xx and never leave partial rows."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_unilink.models import Attachment, Contact, ContactInbox, Conversation, Message, WebhookEvent
from django_unilink.testing.webhooks import example_names, load_example, post_webhook

pytestmark = pytest.mark.django_db

EXAMPLES = [n for n in example_names() if n != "contact_created"]
MIRROR = (Attachment, Message, Conversation, ContactInbox, Contact)

text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x" * 300, "12", "2026-13-45T99:00:00Z", "open", "-1", "1e999"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)),
    max_leaves=8,
)


def paths(value, prefix=()):
    """Every path to a value inside a payload."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


@st.composite
def mutated_payloads(draw):
    payload = load_example(draw(st.sampled_from(EXAMPLES)))
    candidates = [p for p in paths(payload) if p]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(candidates))
        parent = payload
        try:
            for part in path[:-1]:
                parent = parent[part]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    return payload


def encode_leniently(payload) -> bytes:
    # Lone surrogates cannot be UTF-8 encoded: send them as JSON escapes, as a hostile sender could.
    return json.dumps(payload, ensure_ascii=True).encode()


def reset():
    for model in (*MIRROR, WebhookEvent):
        model.objects.all().delete()


def check(client, body: bytes) -> None:
    reset()
    response = post_webhook(client, "default", body)
    assert response.status_code < 500
    assert response["Content-Type"] == "application/json"
    row = WebhookEvent.objects.get()
    if response.status_code >= 400:
        assert row.state == WebhookEvent.State.INVALID and row.invalid_reason
        assert "error" in response.json()
    else:
        assert row.state in (WebhookEvent.State.PROCESSED, WebhookEvent.State.IGNORED, WebhookEvent.State.FAILED)
    if row.state != WebhookEvent.State.PROCESSED:
        # Only the log row may exist: processing is all or nothing.
        assert [m.objects.count() for m in MIRROR] == [0] * len(MIRROR)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(payload=mutated_payloads())
def test_mutated_examples(client, payload):
    check(client, encode_leniently(payload))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_arbitrary_json(client, value):
    check(client, encode_leniently(value))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes(client, body):
    check(client, body)
