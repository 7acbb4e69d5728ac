"""The endpoint's authenticity checks, limits and HTTP behaviour."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from django_unilink import signals
from django_unilink.models import Contact, Conversation, Message, WebhookEvent
from django_unilink.testing.webhooks import build_payload, encode, post_webhook, record_signals, sign, webhook_url
from django_unilink.webhooks import SignatureError, compute_signature, verify_signature

pytestmark = pytest.mark.django_db

SECRET = "test-webhook-secret"  # tests/settings.py
URL = "/unilink/webhook/default/"
State = WebhookEvent.State


@pytest.fixture
def payload():
    return build_payload("message_created")


@pytest.fixture
def two_inboxes(settings):
    settings.UNILINK = {
        **settings.UNILINK,
        "WEBHOOK_SECRET": ["new-secret", "old-secret"],
        "INBOXES": {"sales": {"INBOX_ID": 9, "WEBHOOK_SECRET": "sales-secret"}},
    }


def nothing_mirrored() -> bool:
    return not (Message.objects.exists() or Conversation.objects.exists() or Contact.objects.exists())


def test_reverse_names():
    assert reverse("unilink:webhook", kwargs={"inbox": "default"}) == URL
    assert webhook_url("default", url_token="t0k") == "/unilink/webhook/default/t0k/"


def test_signature_is_over_timestamp_dot_raw_body():
    body = b'{"event":"message_created"}'
    expected = "sha256=" + hmac.new(b"s3cret", b"1781774142." + body, hashlib.sha256).hexdigest()
    assert compute_signature("s3cret", 1781774142, body) == expected
    assert (
        verify_signature(
            body, signature=expected, timestamp="1781774142", secrets=["s3cret"], tolerance=300, now=1781774142 + 299
        ).timestamp()
        == 1781774142
    )


@pytest.mark.parametrize(
    ("signature", "timestamp", "reason"),
    [
        (None, "1781774142", "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp header"),
        ("sha256=00", None, "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp header"),
        ("sha256=00", "yesterday", "X-Chatwoot-Timestamp must be Unix seconds"),
        ("md5=00", "1781774142", "X-Chatwoot-Signature must look like 'sha256=<hex>'"),
        ("sha256=00", "1781774142", "signature does not match"),
    ],
)
def test_verify_signature_reasons(signature, timestamp, reason):
    with pytest.raises(SignatureError) as excinfo:
        verify_signature(b"{}", signature=signature, timestamp=timestamp, secrets=["s"], tolerance=300, now=1781774142)
    assert excinfo.value.reason == reason


def test_valid_signature_is_accepted(client, payload):
    response = post_webhook(client, "default", payload)
    assert response.status_code == 200
    assert WebhookEvent.objects.get().valid is True


def assert_rejected(response, status, reason):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": reason}
    row = WebhookEvent.objects.get()
    assert (row.valid, row.state, row.invalid_reason) == (False, State.INVALID, reason)
    assert nothing_mirrored()
    return row


def test_unsigned_delivery_is_refused(client, payload):
    with record_signals() as calls:
        response = post_webhook(client, "default", payload, signed=False)
    assert_rejected(response, 401, "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp header")
    assert calls == []


def test_wrong_secret_is_refused(client, payload):
    assert_rejected(post_webhook(client, "default", payload, secret="guess"), 401, "signature does not match")


def test_signature_over_the_body_alone_is_refused(client, payload):
    body = encode(payload)
    headers = sign(body, SECRET)
    headers["X-Chatwoot-Signature"] = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(URL, data=body, content_type="application/json", headers=headers)
    assert_rejected(response, 401, "signature does not match")


def test_tampered_body_is_refused(client, payload):
    body = encode(payload)
    headers = sign(body, SECRET)
    response = client.post(
        URL, data=body.replace(b"Sorry", b"Sorry!"), content_type="application/json", headers=headers
    )
    assert_rejected(response, 401, "signature does not match")


@pytest.mark.parametrize("age", [301, -301, 86400])
def test_stale_or_future_timestamp_is_refused(client, payload, age):
    response = post_webhook(client, "default", payload, timestamp=int(time.time()) - age)
    assert_rejected(response, 401, "timestamp outside the tolerance of 300 seconds")


def test_tolerance_is_a_setting(client, payload, settings):
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_TOLERANCE": 3600}
    assert post_webhook(client, "default", payload, timestamp=int(time.time()) - 1800).status_code == 200


def test_replayed_delivery_is_acknowledged_but_not_processed_again(client, payload):
    body = encode(payload)
    headers = sign(body, SECRET, delivery_id="6b1c8e52-1f0e-4a55-8c2a-9a1d2b3c4d5e")
    with record_signals() as calls:
        first = post_webhook(client, "default", body, headers=headers, signed=False)
        second = post_webhook(client, "default", body, headers=headers, signed=False)
    assert (first.status_code, first.json()) == (200, {"status": "processed"})
    assert (second.status_code, second.json()) == (200, {"status": "duplicate"})
    assert WebhookEvent.objects.count() == 1 and Message.objects.count() == 1
    assert [c.name for c in calls] == ["webhook_received", "conversation_created", "message_received"]


def test_replayed_body_under_a_new_delivery_id_changes_nothing(client, payload):
    """An attacker replaying a captured delivery within the tolerance can only repeat it: the remote ids dedupe."""
    post_webhook(client, "default", payload)
    with record_signals() as calls:
        response = post_webhook(client, "default", payload)
    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 2 and Message.objects.count() == 1
    assert [c.name for c in calls] == ["webhook_received"]


def test_replayed_typing_under_a_new_delivery_id_is_not_signalled_again(client):
    # Typing has no mirror state to dedupe on: the repeated signed body itself is recognised.
    payload = build_payload("conversation_typing_on")
    timestamp = int(time.time())
    with record_signals("typing") as calls:
        post_webhook(client, "default", payload, timestamp=timestamp)
        post_webhook(client, "default", payload, timestamp=timestamp)
        post_webhook(client, "default", payload, timestamp=timestamp + 1)  # the platform again, a second later
    assert WebhookEvent.objects.count() == 3
    assert [c.kwargs["is_typing"] for c in calls] == [True, True]


def test_rotated_secrets_are_all_accepted(client, payload, two_inboxes):
    assert post_webhook(client, "default", payload, secret="new-secret").status_code == 200
    assert post_webhook(client, "default", payload, secret="old-secret").status_code == 200
    response = post_webhook(client, "default", payload, secret="test-webhook-secret")
    assert response.status_code == 401
    assert response.json() == {"error": "signature does not match"}


def test_secret_of_another_inbox_is_refused(client, payload, two_inboxes):
    response = post_webhook(client, "default", payload, secret="sales-secret")
    assert response.status_code == 401
    sales = build_payload("message_created", inbox__id=9, conversation__inbox_id=9)
    response = post_webhook(client, "sales", sales, secret="new-secret")
    assert response.status_code == 401
    assert post_webhook(client, "sales", sales, secret="sales-secret").status_code == 200


def test_delivery_for_another_inbox_is_refused_with_the_setting_to_fix(client, two_inboxes, payload):
    response = post_webhook(client, "sales", payload, secret="sales-secret")  # payload of inbox 7
    assert response.status_code == 400
    body = response.json()
    assert "inbox.id" in body["fields"]
    assert "UNILINK['INBOXES']['sales']['INBOX_ID']" in body["error"]
    row = WebhookEvent.objects.get()
    assert (row.valid, row.state) == (True, State.INVALID)
    assert nothing_mirrored()


def test_extra_conversation_key_on_a_conversation_event_is_neither_a_500_nor_a_way_around_the_inbox_check(client):
    # Unknown keys are allowed, so a conversation event may carry any "conversation" value.
    payload = build_payload("conversation_created")
    payload["conversation"] = "not an object"
    payload["inbox"] = ["nor is this"]
    assert post_webhook(client, "default", payload).status_code == 200
    typing = build_payload("conversation_typing_on")
    typing["account"] = typing["inbox"] = "undeclared keys"
    assert post_webhook(client, "default", typing).status_code == 200
    other = build_payload("conversation_created", id=4242, inbox_id=9)  # inbox 9 posted to inbox 7's URL
    other["conversation"] = {"inbox_id": 7}
    response = post_webhook(client, "default", other)
    assert response.status_code == 400
    assert "inbox_id" in response.json()["fields"]
    assert not Conversation.objects.filter(remote_id=4242).exists()


def test_inbox_without_secret_refuses_everything(client, payload, settings):
    settings.UNILINK = {k: v for k, v in settings.UNILINK.items() if k != "WEBHOOK_SECRET"}
    response = post_webhook(client, "default", payload, secret="anything")
    assert response.status_code == 401
    assert response.json() == {"error": "this inbox has no webhook secret configured"}


def test_failures_are_logged_without_body_or_secret(client, caplog):
    payload = build_payload("message_created", content="My card is 4111 1111 1111 1111")
    with caplog.at_level(logging.INFO, logger="django_unilink"):
        post_webhook(client, "default", payload, secret="wrong-secret")
    text = caplog.text
    assert "signature does not match" in text and "'default'" in text
    for secret_or_data in ("4111", "Jane", "jane.doe", "wrong-secret", SECRET, "sha256="):
        assert secret_or_data not in text


def test_rejected_row_keeps_only_an_excerpt_and_no_signature(client):
    big = build_payload("message_created", content="x" * 5000)
    post_webhook(client, "default", big, secret="wrong")
    row = WebhookEvent.objects.get()
    assert len(row.body) == 1024
    assert row.headers["X-Chatwoot-Signature"] == "sha256=(redacted)"
    assert SECRET not in json.dumps(row.headers)


def test_unknown_inbox_is_404_json_and_not_logged_as_a_row(client, payload):
    response = client.post("/unilink/webhook/nope/", data=encode(payload), content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown inbox"}
    assert not WebhookEvent.objects.exists()


def test_wrong_content_type_is_415(client, payload):
    response = post_webhook(client, "default", payload, content_type="application/x-www-form-urlencoded")
    assert_rejected(response, 415, "the content type must be application/json")


def test_json_with_charset_is_fine(client, payload):
    assert post_webhook(client, "default", payload, content_type="application/json; charset=utf-8").status_code == 200


def test_body_over_the_limit_is_413(client, settings):
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_MAX_BODY": 2048}
    payload = build_payload("message_created", content="x" * 3000)
    row = assert_rejected(post_webhook(client, "default", payload), 413, "the body is larger than 2048 bytes")
    assert row.body == ""


def test_limit_above_djangos_upload_limit_still_answers_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_MAX_BODY": 10_000}
    payload = build_payload("message_created", content="x" * 2000)
    assert post_webhook(client, "default", payload).status_code == 413


def test_default_limit_is_one_mebibyte(client):
    payload = build_payload("message_created", content="x" * (1024 * 1024))
    assert post_webhook(client, "default", payload).status_code == 413
    payload = build_payload("message_created", content="x" * (1024 * 1024 - 10_000))
    assert post_webhook(client, "default", payload).status_code == 200


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "the body is not valid JSON"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'{"id": 1}', "the body has no event name"),
        (b'{"event": 5}', "the body has no event name"),
        (b'{"event": ""}', "the body has no event name"),
        (b'{"event": "x", "n": NaN}', "the body is not valid JSON"),
        (b'{"event": "x", "n": 1e999}', "the body is not valid JSON"),
        (b"\xff\xfe{}", "the body is not UTF-8 text"),
        (b'{"event": "x", "a": "nul\\u0000"}', "a: contains a NUL character"),
        (b'{"event": "x", "a": ["\\ud800"]}', "a.0: contains an unpaired surrogate"),
        (b'{"event": "x", "a": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper than 64 levels"),
    ],
)
def test_malformed_bodies_are_400_and_logged(client, body, error):
    response = post_webhook(client, "default", body)
    assert response.status_code == 400
    assert error in response.json()["error"]
    row = WebhookEvent.objects.get()
    assert (row.valid, row.state) == (True, State.INVALID) and error in row.invalid_reason
    assert nothing_mirrored()


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("id", "9877", "id", "Expected an integer."),
        ("conversation__id", None, "conversation.id", "This field may not be null."),
        ("conversation__id", 2**40, "conversation.id", "Ensure this value is less than or equal to 2147483647."),
        ("conversation__contact_inbox__source_id", 55, "conversation.contact_inbox.source_id", "Expected a string."),
        ("conversation__meta__sender__id", "42", "conversation.meta.sender.id", "Expected an integer."),
        ("conversation__status", "x" * 17, "conversation.status", "At most 16 characters."),
        ("conversation__status", 9, "conversation.status", "unknown integer code 9 (known: 0..3)"),
        ("conversation__labels", "vip", "conversation.labels", 'Expected a list of items but got type "str".'),
        (
            "conversation__updated_at",
            "soon",
            "conversation.updated_at",
            "Expected an ISO-8601 date and time or Unix seconds.",
        ),
        ("message_type", 7, "message_type", "unknown integer code 7 (known: 0..3)"),
        ("private", "false", "private", "Expected true or false."),
        ("content", 5, "content", "Expected a string."),
        ("content_attributes", [], "content_attributes", "Expected a JSON object."),
        ("source_id", "s" * 256, "source_id", "Ensure this field has no more than 255 characters."),
        # Not sent today, but read by the mapping when present (an upcoming platform adds them).
        ("updated_at", "soon", "updated_at", "Expected an ISO-8601 date and time or Unix seconds."),
        ("status", {"x": 1}, "status", "Expected a string."),
    ],
)
def test_fields_of_the_wrong_type_are_400_naming_the_field(client, path, value, field, message):
    payload = build_payload("message_created", **{path: value})
    response = post_webhook(client, "default", payload)
    assert response.status_code == 400
    body = response.json()
    assert body["fields"][field] == [message]
    assert body["error"].startswith("invalid message_created payload: ")
    assert nothing_mirrored()


def test_missing_conversation_is_400_but_the_verified_delivery_is_announced(client):
    payload = build_payload("message_created")
    del payload["conversation"]
    with record_signals() as calls:
        response = post_webhook(client, "default", payload)
    assert response.status_code == 400
    assert response.json()["fields"] == {"conversation": ["This field is required."]}
    assert [(c.name, c.kwargs["webhook_event"].state) for c in calls] == [("webhook_received", State.INVALID)]


def test_invalid_delivery_id_header_is_400(client, payload):
    response = post_webhook(client, "default", payload, delivery_id="x" * 101)
    assert response.status_code == 400


def test_get_is_405_json_and_head_options_are_answered(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert response.json() == {"error": 'Method "GET" not allowed.'}
    assert client.head(URL).status_code == 200
    options = client.options(URL)
    assert options.status_code == 200 and options["Allow"] == "POST, HEAD, OPTIONS"
    assert client.head("/unilink/webhook/nope/").status_code == 404
    assert not WebhookEvent.objects.exists()


def test_no_csrf_no_login_no_content_negotiation(payload):
    client = Client(enforce_csrf_checks=True)
    response = post_webhook(client, "default", payload, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_remote_ip_honours_trusted_proxies(client, payload, settings):
    post_webhook(client, "default", payload, headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.2"})
    assert WebhookEvent.objects.get().remote_ip == "127.0.0.1"  # no trusted proxy: the socket's address
    settings.UNILINK = {**settings.UNILINK, "TRUSTED_PROXY_COUNT": 2}
    post_webhook(client, "default", payload, headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.2"})
    assert WebhookEvent.objects.order_by("-pk").first().remote_ip == "203.0.113.9"
    post_webhook(client, "default", payload, headers={"X-Forwarded-For": "garbage, 10.0.0.2"})
    assert WebhookEvent.objects.order_by("-pk").first().remote_ip is None


# -- the opt-in unsigned mode ----------------------------------------------------------------------

TOKEN = "k3Jd9QmZx7LpV2sT8wYb4NcR6hFa1Ue5"


@pytest.fixture
def unsigned(settings):
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_ALLOW_UNSIGNED": True, "WEBHOOK_URL_TOKEN": TOKEN}


def test_unsigned_mode_accepts_the_token_url_only(client, payload, unsigned):
    response = post_webhook(client, "default", payload, signed=False, url_token=TOKEN)
    assert response.status_code == 200
    assert WebhookEvent.objects.get().valid is True
    # The plain URL still demands a signature.
    assert post_webhook(client, "default", payload, signed=False).status_code == 401


def test_unsigned_mode_wrong_token_is_401(client, payload, unsigned):
    response = post_webhook(client, "default", payload, signed=False, url_token=TOKEN[:-1] + "X")
    assert response.status_code == 401
    assert response.json() == {"error": "invalid URL token"}


def test_unsigned_mode_still_checks_a_signature_when_one_is_sent(client, payload, unsigned):
    assert post_webhook(client, "default", payload, url_token=TOKEN).status_code == 200
    assert post_webhook(client, "default", payload, url_token=TOKEN, secret="wrong").status_code == 401


def test_url_token_never_reaches_the_logs(client, unsigned, caplog):
    with caplog.at_level(logging.DEBUG):
        post_webhook(client, "default", b"not json", signed=False, url_token=TOKEN)
        post_webhook(client, "default", build_payload("message_created"), signed=False, url_token=TOKEN)
        post_webhook(client, "default", b"{}", signed=False, url_token="wrong-token")
    assert "Invalid webhook for inbox 'default'" in caplog.text
    assert TOKEN not in caplog.text and "wrong-token" not in caplog.text


def test_token_url_does_not_exist_when_unsigned_mode_is_off(client, payload):
    response = post_webhook(client, "default", payload, signed=False, url_token=TOKEN)
    assert response.status_code == 404


# -- transactions ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_exempt_from_atomic_requests_and_log_row_committed_first(client, payload, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    seen = {}

    def receiver(sender, webhook_event, **kwargs):
        seen["in_atomic_block"] = connection.in_atomic_block
        # Committed already: visible on a second connection would need threads; the row has a pk
        # and the request is not wrapped in a transaction.
        seen["row"] = WebhookEvent.objects.filter(pk=webhook_event.pk).exists()

    signals.webhook_received.connect(receiver)
    try:
        response = post_webhook(client, "default", payload)
    finally:
        signals.webhook_received.disconnect(receiver)
    assert response.status_code == 200
    assert seen == {"in_atomic_block": False, "row": True}
