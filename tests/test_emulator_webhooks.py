"""The emulator's webhooks: signing, headers, which events, payload shapes, failed deliveries.

A tiny HTTP server in the test receives the deliveries. Payload shapes are compared key for key
(and JSON type for type) with the platform examples copied into tests/fixtures/webhooks/.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from django_unilink.testing.emulator import Emulator

TOKEN = "emulator-test-token"
SECRET = "Qm8rT2vXyZ4pL9sK1nB6cD3f"
FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


class Receiver:
    """A webhook endpoint on loopback that records raw deliveries and answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "raw": raw, "path": self.path})
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/unilink/webhook/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, event: str | None = None) -> list[dict[str, Any]]:
        items = [json.loads(r["raw"]) for r in self.received]
        return [b for b in items if event is None or b["event"] == event]

    def events(self) -> list[str]:
        return [b["event"] for b in self.bodies()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def emu(receiver: Receiver) -> Iterator[Emulator]:
    with Emulator(api_access_token=TOKEN, webhook_timeout=1.0) as emulator:
        emulator.add_inbox(7, webhook_url=receiver.url, secret=SECRET)
        yield emulator


class Api:
    def __init__(self, emulator: Emulator) -> None:
        self.base = f"{emulator.url}/api/v1/accounts/1"
        self.session = requests.Session()
        self.session.headers["api_access_token"] = TOKEN

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, self.base + path, timeout=5, **kwargs)
        assert response.status_code == 200, response.text
        return response.json() if response.content else None


@pytest.fixture
def api(emu: Emulator) -> Api:
    return Api(emu)


def _conversation(api: Api, **message: Any) -> dict[str, Any]:
    contact = api(
        "POST",
        "/contacts",
        json={
            "name": "Jane Doe",
            "email": "jane.doe@example.com",
            "identifier": "unilink-user-1001",
            "phone_number": "+15555550123",
            "inbox_id": 7,
        },
    )["payload"]
    body: dict[str, Any] = {
        "source_id": contact["contact_inbox"]["source_id"],
        "custom_attributes": {"unilink_thread_id": "thr_8K2M4Q"},
    }
    if message:
        body["message"] = message
    return api("POST", "/conversations", json=body)


# -- delivery mechanics (§3.4) ----------------------------------------------------------------------


def test_delivery_is_signed_over_timestamp_and_raw_body(api: Api, emu: Emulator, receiver: Receiver) -> None:
    conversation = _conversation(api)
    api(
        "POST",
        f"/conversations/{conversation['id']}/messages",
        json={"content": "<b>Tom & Jerry</b>", "message_type": "incoming"},
    )
    emu.wait_for_webhooks()
    assert receiver.events() == ["conversation_created", "message_created"]
    for delivery in receiver.received:
        headers = delivery["headers"]
        raw = delivery["raw"]
        timestamp = headers["X-Chatwoot-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Chatwoot-Signature"], expected)
        assert headers["X-Chatwoot-Signature"] != "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert abs(int(timestamp) - time.time()) < 60
        assert headers["Content-Type"] == "application/json" and headers["Accept"] == "application/json"
        assert uuid.UUID(headers["X-Chatwoot-Delivery"]).version == 4
        assert b": " not in raw.split(b'"content"')[0]  # compact JSON
    delivery_ids = {d["headers"]["X-Chatwoot-Delivery"] for d in receiver.received}
    assert len(delivery_ids) == 2  # one per delivery
    raw = receiver.received[1]["raw"]
    assert b"\\u003cb\\u003eTom \\u0026 Jerry\\u003c/b\\u003e" in raw  # ActiveSupport escaping
    assert json.loads(raw)["content"] == "<b>Tom & Jerry</b>"


def test_deliveries_are_recorded(api: Api, emu: Emulator, receiver: Receiver) -> None:
    _conversation(api)
    emu.wait_for_webhooks()
    (delivery,) = emu.webhook_deliveries()
    assert delivery["event"] == "conversation_created"
    assert delivery["url"] == receiver.url
    assert delivery["status"] == 200 and delivery["error"] is None
    assert delivery["delivery_id"] == receiver.received[0]["headers"]["X-Chatwoot-Delivery"]
    assert delivery["raw"] == receiver.received[0]["raw"]
    assert delivery["body"]["event"] == "conversation_created"


def test_no_webhook_url_means_no_delivery(receiver: Receiver) -> None:
    with Emulator(api_access_token=TOKEN) as emulator:
        emulator.add_inbox(7)
        _conversation(Api(emulator))
        emulator.wait_for_webhooks()
        assert emulator.webhook_deliveries() == []
        emulator.update_inbox(7, webhook_url=receiver.url)
        emulator.agent_reply(1, "now it is set")
        emulator.wait_for_webhooks()
    assert receiver.events() == ["message_created", "conversation_updated"]


def test_events_for_each_change(api: Api, emu: Emulator, receiver: Receiver) -> None:
    conversation = _conversation(api, content="Hi", message_type="incoming")
    cid = conversation["id"]
    echo = api(
        "POST",
        f"/conversations/{cid}/messages",
        json={"content": "mine", "message_type": "incoming", "source_id": "s-1"},
    )
    emu.agent_reply(cid, "Hello Jane")
    emu.agent_reply(cid, "internal", private=True)
    api("PATCH", f"/conversations/{cid}/messages/{echo['id']}", json={"status": "delivered"})
    emu.agent_typing(cid)
    emu.agent_typing(cid, on=False)
    emu.set_status(cid, "resolved")
    emu.wait_for_webhooks()
    assert receiver.events() == [
        "conversation_created",
        "message_created",  # initial incoming message
        "message_created",  # echo of the app's own incoming message
        "message_created",  # agent reply
        "conversation_updated",  # first_reply_created_at + waiting_since
        "message_created",  # private note: sent too
        "message_updated",  # status delivered
        "conversation_typing_on",
        "conversation_typing_off",
        "conversation_status_changed",
        "conversation_updated",
    ]  # the resolve activity message is never sent
    created = receiver.bodies("message_created")
    assert [(b["message_type"], b["private"]) for b in created] == [
        ("incoming", False),
        ("incoming", False),
        ("outgoing", False),
        ("outgoing", True),
    ]
    assert created[1]["source_id"] == "s-1"
    assert "sender" in created[0] and "type" not in created[0]["sender"]  # contact: no type key
    assert created[2]["sender"]["type"] == "user"
    reply_update = receiver.bodies("conversation_updated")[0]["changed_attributes"]
    assert [next(iter(item)) for item in reply_update] == ["first_reply_created_at", "waiting_since", "updated_at"]
    status_changed = receiver.bodies("conversation_status_changed")[0]
    assert status_changed["changed_attributes"] is None and status_changed["status"] == "resolved"
    status_update = receiver.bodies("conversation_updated")[1]["changed_attributes"]
    assert status_update[0] == {"status": {"previous_value": "open", "current_value": "resolved"}}
    typing = receiver.bodies("conversation_typing_on")[0]
    assert set(typing) == {"event", "user", "conversation", "is_private"} and typing["is_private"] is False


def test_private_note_is_not_the_nested_last_message(api: Api, emu: Emulator, receiver: Receiver) -> None:
    conversation = _conversation(api, content="Hi", message_type="incoming")
    emu.agent_reply(conversation["id"], "secret note", private=True)
    emu.wait_for_webhooks()
    note = receiver.bodies("message_created")[-1]
    assert note["private"] is True
    assert [m["content"] for m in note["conversation"]["messages"]] == ["Hi"]


def test_webhook_content_is_normalized(api: Api, emu: Emulator, receiver: Receiver) -> None:
    conversation = _conversation(api)
    stored = api(
        "POST",
        f"/conversations/{conversation['id']}/messages",
        json={"content": "a\\\nb\n\n", "message_type": "incoming"},
    )
    emu.wait_for_webhooks()
    assert stored["content"] == "a\\\nb\n\n"
    body = receiver.bodies("message_created")[0]
    assert body["content"] == "a\nb"
    assert body["conversation"]["messages"][0]["processed_message_content"] == "a\nb"


# -- failed deliveries (§3.4 "On failure") --------------------------------------------------------------


def test_non_2xx_marks_the_message_failed(api: Api, emu: Emulator, receiver: Receiver) -> None:
    conversation = _conversation(api)
    emu.wait_for_webhooks()
    receiver.status = 500
    message = api(
        "POST", f"/conversations/{conversation['id']}/messages", json={"content": "x", "message_type": "incoming"}
    )
    emu.wait_for_webhooks()
    (stored,) = emu.messages(conversation["id"])
    assert stored["status"] == "failed"
    assert stored["content_attributes"] == {"external_error": "500 Internal Server Error"}
    # one attempt each: message_created fails, the message_updated it causes fails the same way, and stops
    assert receiver.events() == ["conversation_created", "message_created", "message_updated"]
    deliveries = emu.webhook_deliveries()
    assert [(d["event"], d["status"], d["error"]) for d in deliveries[1:]] == [
        ("message_created", 500, "500 Internal Server Error"),
        ("message_updated", 500, "500 Internal Server Error"),
    ]
    assert receiver.bodies("message_updated")[0]["id"] == message["id"]
    receiver.status = 204
    emu.agent_reply(conversation["id"], "fine now")
    emu.wait_for_webhooks()
    assert emu.messages(conversation["id"])[-1]["status"] == "sent"


def test_failed_conversation_event_changes_nothing(api: Api, emu: Emulator, receiver: Receiver) -> None:
    receiver.status = 404
    _conversation(api)
    emu.wait_for_webhooks()
    assert [(d["event"], d["error"]) for d in emu.webhook_deliveries()] == [("conversation_created", "404 Not Found")]


def test_timeout_marks_the_message_failed(api: Api, emu: Emulator, receiver: Receiver) -> None:
    conversation = _conversation(api)
    emu.wait_for_webhooks()
    emu.webhook_timeout = 0.2
    receiver.delay = 0.4
    emu.agent_reply(conversation["id"], "slow endpoint")
    emu.wait_for_webhooks(timeout=10)
    receiver.delay = 0
    reply = next(m for m in emu.messages(conversation["id"]) if m["content"] == "slow endpoint")
    assert reply["status"] == "failed"
    assert reply["content_attributes"]["external_error"].startswith("Net::ReadTimeout")


def test_connection_refused_marks_the_message_failed() -> None:
    import socket

    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Emulator(api_access_token=TOKEN) as emulator:
        emulator.add_inbox(7, webhook_url=f"http://127.0.0.1:{port}/hook")
        conversation = _conversation(Api(emulator))
        emulator.agent_reply(conversation["id"], "nobody home")
        emulator.wait_for_webhooks()
        (reply,) = emulator.messages(conversation["id"])
        deliveries = emulator.webhook_deliveries()
    assert reply["status"] == "failed"
    assert "Connection refused" in reply["content_attributes"]["external_error"]
    assert all(d["status"] is None and d["error"] for d in deliveries)


def test_wait_for_webhooks_times_out(api: Api, emu: Emulator, receiver: Receiver) -> None:
    receiver.delay = 0.5
    _conversation(api)
    with pytest.raises(TimeoutError):
        emu.wait_for_webhooks(timeout=0.1)
    receiver.delay = 0
    emu.wait_for_webhooks()


# -- payload shapes vs. the platform's examples -----------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return type(value).__name__


def assert_same_shape(expected: Any, actual: Any, where: str = "$") -> None:
    """Same keys in the same order and the same JSON types, recursively (values may differ)."""
    assert _json_type(actual) == _json_type(expected), f"{where}: {_json_type(actual)} != {_json_type(expected)}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_same_shape(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, expected {len(expected)}"
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_same_shape(e, a, f"{where}[{index}]")


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_payloads_match_the_platform_examples_key_for_key(api: Api, emu: Emulator, receiver: Receiver) -> None:
    """Replays the examples' timeline (README of spec/webhooks) and compares each event."""
    got: dict[str, Any] = {}

    def step() -> None:
        # payloads are built at delivery time: wait after each step so each reflects that step
        emu.wait_for_webhooks()

    def last(event: str) -> dict[str, Any]:
        return receiver.bodies(event)[-1]

    conversation = _conversation(
        api, content="Hi, I need help with my order #1042", message_type="incoming", source_id="unilink-msg-7d2e90"
    )
    cid = conversation["id"]
    step()
    got["conversation_created"] = last("conversation_created")
    api(
        "POST",
        f"/conversations/{cid}/messages",
        data={
            "content": "Here is a photo of the damaged item",
            "message_type": "incoming",
            "source_id": "unilink-msg-7d2e91",
        },
        files=[("attachments[]", ("damaged-item.jpg", b"\xff\xd8\xff", "image/jpeg"))],
    )
    step()
    got["message_created_incoming"] = last("message_created")
    api("POST", f"/conversations/{cid}/assignments", json={"assignee_id": 1})  # the agent self-assigns
    step()
    got["conversation_updated"] = last("conversation_updated")
    emu.agent_typing(cid)
    step()
    got["conversation_typing_on"] = last("conversation_typing_on")
    reply = emu.agent_reply(cid, "Sorry about that, Jane! I've started a replacement for order #1042.")
    step()
    got["message_created_outgoing"] = last("message_created")
    api("PATCH", f"/conversations/{cid}/messages/{reply['id']}", json={"status": "delivered"})
    step()
    emu.delete_message(cid, reply["id"])
    step()
    got["message_updated"] = last("message_updated")
    emu.set_status(cid, "resolved")
    step()
    got["conversation_status_changed"] = last("conversation_status_changed")

    for name, body in got.items():
        assert_same_shape(_fixture(name), body, name)
    assert got["conversation_status_changed"]["changed_attributes"] is None
    assert got["message_updated"]["content_attributes"] == {"deleted": True}
    assert got["message_updated"]["conversation"]["messages"][0]["status"] == "delivered"


def test_fixtures_were_copied_unchanged() -> None:
    """Guard: the copies in tests/fixtures/webhooks are the platform examples (all 8 of them)."""
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    assert names == [
        "contact_created",
        "conversation_created",
        "conversation_status_changed",
        "conversation_typing_on",
        "conversation_updated",
        "message_created_incoming",
        "message_created_outgoing",
        "message_updated",
    ]
    assert _fixture("message_created_incoming")["message_type"] == "incoming"
