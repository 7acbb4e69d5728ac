"""The emulator's Application API: shapes, auth, errors, paging and injected faults.

Driven with plain ``requests`` against the running server; no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from django_unilink.testing.emulator import Emulator

TOKEN = "emulator-test-token"
HEADERS = {"api_access_token": TOKEN}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_access_token=TOKEN) as emulator:
        emulator.add_inbox(7, secret="s" * 24)
        yield emulator


class Api:
    """Tiny helper: account-scoped calls with the token."""

    def __init__(self, emulator: Emulator) -> None:
        self.base = f"{emulator.url}/api/v1/accounts/{emulator.account_id}"
        self.session = requests.Session()
        self.session.headers.update(HEADERS)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        return self.session.request(method, self.base + path, **kwargs)

    def contact(self, **fields: Any) -> dict[str, Any]:
        response = self("POST", "/contacts", json={"inbox_id": 7, **fields})
        assert response.status_code == 200, response.text
        return response.json()["payload"]

    def conversation(self, **fields: Any) -> dict[str, Any]:
        if "source_id" not in fields and "contact_id" not in fields:
            contact = self.contact(name="Jane")
            fields = {"source_id": contact["contact_inbox"]["source_id"], **fields}
        response = self("POST", "/conversations", json=fields)
        assert response.status_code == 200, response.text
        return response.json()

    def message(self, conversation_id: int, **fields: Any) -> dict[str, Any]:
        response = self("POST", f"/conversations/{conversation_id}/messages", json=fields)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def api(emu: Emulator) -> Api:
    return Api(emu)


# -- auth and errors (§1.1, §4.2) -------------------------------------------------------------------


def test_missing_token_is_401_with_devise_body(emu: Emulator) -> None:
    response = requests.get(f"{emu.url}/api/v1/accounts/1/contacts", timeout=5)
    assert response.status_code == 401
    assert response.json() == {"errors": ["You need to sign in or sign up before continuing."]}


def test_wrong_token_is_401_invalid_access_token(emu: Emulator) -> None:
    response = requests.get(f"{emu.url}/api/v1/accounts/1/contacts", headers={"api_access_token": "nope"}, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid Access Token"}


def test_dashed_token_header_is_accepted(emu: Emulator) -> None:
    response = requests.get(f"{emu.url}/api/v1/profile", headers={"Api-Access-Token": TOKEN}, timeout=5)
    assert response.status_code == 200
    assert response.json()["access_token"] == TOKEN
    assert response.json()["accounts"][0]["id"] == 1


def test_other_account_is_401(emu: Emulator) -> None:
    response = requests.get(f"{emu.url}/api/v1/accounts/2/contacts", headers=HEADERS, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": "You are not authorized to access this account"}


def test_unknown_ids_are_404_resource_not_found(api: Api) -> None:
    for path in ("/contacts/999", "/conversations/999", "/conversations/999/messages", "/inboxes/999", "/contacts/abc"):
        response = api("GET", path)
        assert response.status_code == 404, path
        assert response.json() == {"error": "Resource could not be found"}


def test_unknown_route_is_404(api: Api) -> None:
    response = api("GET", "/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "Not Found"}


def test_invalid_json_body_is_400(api: Api) -> None:
    response = api("POST", "/contacts", data=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


# -- inboxes / profile (§1.5) ------------------------------------------------------------------------


def test_inbox_shows_secret_to_administrators_only() -> None:
    with Emulator(api_access_token=TOKEN) as admin_emu, Emulator(api_access_token=TOKEN, admin=False) as agent_emu:
        for emulator in (admin_emu, agent_emu):
            emulator.add_inbox(7, webhook_url="http://127.0.0.1:9/hook", secret="x" * 24)
        admin_view = Api(admin_emu)("GET", "/inboxes/7").json()
        agent_view = Api(agent_emu)("GET", "/inboxes/7").json()
    assert admin_view["secret"] == "x" * 24
    assert admin_view["webhook_url"] == "http://127.0.0.1:9/hook"
    assert admin_view["channel_type"] == "Channel::Api"
    assert len(admin_view["inbox_identifier"]) == 24
    assert "hmac_token" in admin_view
    assert "secret" not in agent_view and "hmac_token" not in agent_view
    assert agent_view["inbox_identifier"] == admin_view["inbox_identifier"] or agent_view["inbox_identifier"]


def test_generated_secret_is_24_characters(emu: Emulator) -> None:
    inbox = emu.add_inbox(8)
    assert len(inbox["secret"]) == 24
    assert inbox["id"] == 8


def test_reset_secret_rotates(api: Api) -> None:
    before = api("GET", "/inboxes/7").json()["secret"]
    after = api("POST", "/inboxes/7/reset_secret").json()["secret"]
    assert after != before and len(after) == 24


# -- contacts (§1.2) -----------------------------------------------------------------------------------


def test_create_contact_with_inbox_is_wrapped(api: Api) -> None:
    payload = api.contact(name="Jane", email="Jane@Example.com", identifier="u-1", source_id="src-1")
    contact = payload["contact"]
    assert list(contact) == [
        "additional_attributes",
        "availability_status",
        "email",
        "id",
        "name",
        "phone_number",
        "blocked",
        "identifier",
        "thumbnail",
        "custom_attributes",
        "created_at",
        "contact_inboxes",
    ]
    assert contact["email"] == "jane@example.com"  # downcased
    assert isinstance(contact["created_at"], int)
    assert contact["contact_inboxes"][0]["source_id"] == "src-1"
    assert set(contact["contact_inboxes"][0]["inbox"]) == {
        "id",
        "avatar_url",
        "channel_id",
        "name",
        "channel_type",
        "provider",
    }
    assert payload["contact_inbox"]["source_id"] == "src-1"
    raw_inbox = payload["contact_inbox"]["inbox"]
    assert raw_inbox["id"] == 7 and raw_inbox["account_id"] == 1 and "lock_to_single_conversation" in raw_inbox


def test_create_contact_generates_uuid_source_id(api: Api) -> None:
    source_id = api.contact(name="A")["contact_inbox"]["source_id"]
    assert len(source_id) == 36 and source_id.count("-") == 4


def test_create_contact_without_inbox_has_null_contact_inbox(api: Api) -> None:
    response = api("POST", "/contacts", json={"name": "No inbox", "email": "n@example.com"})
    assert response.status_code == 200
    assert response.json()["payload"]["contact_inbox"] == {"inbox": None, "source_id": None}
    assert response.json()["payload"]["contact"]["contact_inboxes"] == []


@pytest.mark.parametrize(
    ("first", "second", "attribute", "message"),
    [
        ({"email": "a@example.com"}, {"email": "A@EXAMPLE.com"}, "email", "Email has already been taken"),
        ({"identifier": "id-1"}, {"identifier": "id-1"}, "identifier", "Identifier has already been taken"),
        (
            {"phone_number": "+15555550123"},
            {"phone_number": "+15555550123"},
            "phone_number",
            "Phone number has already been taken",
        ),
    ],
)
def test_duplicate_contact_is_422(api: Api, first: dict, second: dict, attribute: str, message: str) -> None:
    api.contact(name="One", **first)
    response = api("POST", "/contacts", json={"name": "Two", "inbox_id": 7, **second})
    assert response.status_code == 422
    assert response.json() == {"message": message, "attributes": [attribute]}
    assert len(api("GET", "/contacts").json()["payload"]) == 1  # nothing half-written


def test_bad_phone_and_email_are_422_together(api: Api) -> None:
    response = api("POST", "/contacts", json={"email": "not-an-email", "phone_number": "5555550123"})
    assert response.status_code == 422
    body = response.json()
    assert body["attributes"] == ["email", "phone_number"]
    assert body["message"] == "Email Invalid email, Phone number should be in e164 format"


def test_phone_regex_has_no_start_anchor(api: Api) -> None:
    # /\+[1-9]\d{1,14}\z/ without \A: a prefix before the + passes, as upstream.
    assert api("POST", "/contacts", json={"phone_number": "tel+15555550123"}).status_code == 200


def test_create_contact_with_unknown_inbox_is_404_and_writes_nothing(api: Api, emu: Emulator) -> None:
    response = api("POST", "/contacts", json={"name": "X", "email": "x@example.com", "inbox_id": 99})
    assert response.status_code == 404
    assert emu.contacts() == []


def test_get_and_patch_contact_merge_attributes(api: Api) -> None:
    contact = api.contact(name="Jane", custom_attributes={"a": 1, "b": 2})["contact"]
    got = api("GET", f"/contacts/{contact['id']}").json()
    assert set(got) == {"payload"} and got["payload"]["id"] == contact["id"]
    patched = api("PATCH", f"/contacts/{contact['id']}", json={"name": "Janet", "custom_attributes": {"b": 3, "c": 4}})
    assert patched.status_code == 200
    assert patched.json()["payload"]["custom_attributes"] == {"a": 1, "b": 3, "c": 4}
    assert patched.json()["payload"]["name"] == "Janet"
    put = api("PUT", f"/contacts/{contact['id']}", json={"additional_attributes": {"city": "Oslo"}})
    assert put.json()["payload"]["additional_attributes"] == {"city": "Oslo"}
    assert put.json()["payload"]["custom_attributes"] == {"a": 1, "b": 3, "c": 4}


def test_patch_contact_to_taken_email_is_422(api: Api) -> None:
    api.contact(email="one@example.com")
    second = api.contact(email="two@example.com")["contact"]
    response = api("PATCH", f"/contacts/{second['id']}", json={"email": "one@example.com"})
    assert response.status_code == 422
    assert response.json()["attributes"] == ["email"]


def test_contact_list_pages_by_15_and_lists_only_resolved(api: Api) -> None:
    for index in range(17):
        api.contact(name=f"C{index}", identifier=f"id-{index}")
    api.contact(name="Anonymous")  # no email/phone/identifier: not listed
    first = api("GET", "/contacts").json()
    second = api("GET", "/contacts", params={"page": 2}).json()
    third = api("GET", "/contacts", params={"page": 3}).json()
    assert first["meta"] == {"count": 17, "current_page": 1}
    assert second["meta"] == {"count": 17, "current_page": "2"}  # echoes the query parameter
    assert len(first["payload"]) == 15 and len(second["payload"]) == 2 and third["payload"] == []
    ids = [c["id"] for c in first["payload"] + second["payload"]]
    assert len(set(ids)) == 17


def test_contact_list_sort(api: Api) -> None:
    for name in ("bob", "Alice", "carol"):
        api.contact(name=name, identifier=name)
    names = [c["name"] for c in api("GET", "/contacts", params={"sort": "name"}).json()["payload"]]
    assert names == ["Alice", "bob", "carol"]
    names = [c["name"] for c in api("GET", "/contacts", params={"sort": "-name"}).json()["payload"]]
    assert names == ["carol", "bob", "Alice"]


def test_search_requires_q_and_pages_with_has_more(api: Api) -> None:
    assert api("GET", "/contacts/search").status_code == 422
    assert api("GET", "/contacts/search").json() == {"error": "Specify search string with parameter q"}
    for index in range(16):
        api.contact(name=f"Match {index}", email=f"m{index}@example.com")
    api.contact(name="Other", email="zzz@example.org")
    first = api("GET", "/contacts/search", params={"q": "MATCH"}).json()
    second = api("GET", "/contacts/search", params={"q": "match", "page": "2"}).json()
    assert first["meta"] == {"count": 15, "current_page": 1, "has_more": True}
    assert second["meta"] == {"count": 1, "current_page": "2", "has_more": False}
    by_email = api("GET", "/contacts/search", params={"q": "example.org"}).json()["payload"]
    assert [c["name"] for c in by_email] == ["Other"]


def test_filter_equal_to(api: Api) -> None:
    api.contact(name="Jane", identifier="user-1")
    api.contact(name="John", identifier="user-2")
    body = {
        "payload": [
            {"attribute_key": "identifier", "filter_operator": "equal_to", "values": ["user-2"], "query_operator": None}
        ]
    }
    result = api("POST", "/contacts/filter", json=body).json()
    assert result["meta"] == {"count": 1, "current_page": 1}
    assert [c["name"] for c in result["payload"]] == ["John"]
    either = {
        "payload": [
            {"attribute_key": "name", "filter_operator": "equal_to", "values": ["jane"], "query_operator": "OR"},
            {"attribute_key": "identifier", "filter_operator": "equal_to", "values": ["user-2"]},
        ]
    }
    assert len(api("POST", "/contacts/filter", json=either).json()["payload"]) == 2
    bad = api("POST", "/contacts/filter", json={"payload": [{"attribute_key": "nope", "filter_operator": "equal_to"}]})
    assert bad.status_code == 422 and "error" in bad.json()


def test_contact_inboxes_is_bare_and_idempotent(api: Api, emu: Emulator) -> None:
    emu.add_inbox(8)
    contact = api("POST", "/contacts", json={"name": "Jane"}).json()["payload"]["contact"]
    first = api("POST", f"/contacts/{contact['id']}/contact_inboxes", json={"inbox_id": 8, "source_id": "s-8"})
    assert first.status_code == 200
    assert first.json() == {
        "source_id": "s-8",
        "inbox": {
            "id": 8,
            "avatar_url": "",
            "channel_id": 2,
            "name": "UniLink API",
            "channel_type": "Channel::Api",
            "provider": None,
        },
    }
    again = api("POST", f"/contacts/{contact['id']}/contact_inboxes", json={"inbox_id": 8, "source_id": "s-8"})
    assert again.json()["source_id"] == "s-8"
    assert len(api("GET", f"/contacts/{contact['id']}").json()["payload"]["contact_inboxes"]) == 1
    other = api("POST", "/contacts", json={"name": "Other"}).json()["payload"]["contact"]
    taken = api("POST", f"/contacts/{other['id']}/contact_inboxes", json={"inbox_id": 8, "source_id": "s-8"})
    assert taken.status_code == 422
    assert api("POST", f"/contacts/{other['id']}/contact_inboxes", json={"inbox_id": 99}).status_code == 404


# -- conversations (§1.3) --------------------------------------------------------------------------------

CONVERSATION_KEYS = [
    "meta",
    "id",
    "messages",
    "account_id",
    "uuid",
    "additional_attributes",
    "agent_last_seen_at",
    "assignee_last_seen_at",
    "can_reply",
    "contact_last_seen_at",
    "custom_attributes",
    "inbox_id",
    "labels",
    "muted",
    "snoozed_until",
    "status",
    "created_at",
    "updated_at",
    "timestamp",
    "first_reply_created_at",
    "unread_count",
    "last_non_activity_message",
    "last_activity_at",
    "priority",
    "waiting_since",
    "sla_policy_id",
]


def test_create_conversation_by_source_id_returns_bare_object(api: Api) -> None:
    source_id = api.contact(name="Jane", email="jane@example.com")["contact_inbox"]["source_id"]
    response = api(
        "POST",
        "/conversations",
        json={
            "source_id": source_id,
            "custom_attributes": {"thread": "t-1"},
            "message": {"content": "Hello", "message_type": "incoming"},
        },
    )
    assert response.status_code == 200
    conversation = response.json()
    assert list(conversation) == CONVERSATION_KEYS
    assert conversation["id"] == 1 and conversation["inbox_id"] == 7 and conversation["status"] == "open"
    assert conversation["custom_attributes"] == {"thread": "t-1"}
    assert isinstance(conversation["updated_at"], float) and isinstance(conversation["created_at"], int)
    assert conversation["first_reply_created_at"] == 0 and conversation["waiting_since"] == conversation["created_at"]
    assert conversation["meta"]["sender"]["email"] == "jane@example.com"
    assert "contact_inboxes" not in conversation["meta"]["sender"]
    assert "assignee" not in conversation["meta"]
    (message,) = conversation["messages"]
    assert message["message_type"] == 0 and message["content"] == "Hello"
    assert message["conversation"]["contact_inbox"] == {"source_id": source_id}
    assert conversation["unread_count"] == 1


def test_create_conversation_with_contact_and_inbox(api: Api, emu: Emulator) -> None:
    contact = api("POST", "/contacts", json={"name": "Jane"}).json()["payload"]["contact"]
    conversation = api.conversation(contact_id=contact["id"], inbox_id=7, source_id="chosen", status="pending")
    assert conversation["status"] == "pending"
    assert emu.conversation_source_id(conversation["id"]) == "chosen"
    second = api.conversation(contact_id=contact["id"], inbox_id=7, source_id="chosen")
    assert second["id"] == 2  # per-account display ids


def test_create_conversation_with_unknown_source_id_is_404(api: Api, emu: Emulator) -> None:
    response = api("POST", "/conversations", json={"source_id": "nope"})
    assert response.status_code == 404
    assert response.json() == {"error": "Resource could not be found"}
    assert api("POST", "/conversations", json={"inbox_id": 7, "contact_id": 99}).status_code == 404
    assert emu.conversations() == []


def test_create_conversation_with_bad_initial_message_writes_nothing(api: Api, emu: Emulator) -> None:
    contact = api("POST", "/contacts", json={"name": "Jane"}).json()["payload"]["contact"]
    response = api(
        "POST",
        "/conversations",
        json={"inbox_id": 7, "contact_id": contact["id"], "message": {"content": "x", "message_type": "bogus"}},
    )
    assert response.status_code == 422
    assert emu.conversations() == [] and emu.messages() == []


def test_get_conversation(api: Api) -> None:
    created = api.conversation()
    got = api("GET", f"/conversations/{created['id']}")
    assert got.status_code == 200 and got.json()["id"] == created["id"] and list(got.json()) == CONVERSATION_KEYS


def test_conversation_list_is_wrapped_in_data_and_pages_by_25(api: Api) -> None:
    source_id = api.contact(name="Jane")["contact_inbox"]["source_id"]
    for _ in range(27):
        api.conversation(source_id=source_id)
    first = api("GET", "/conversations").json()
    assert set(first) == {"data"}
    assert first["data"]["meta"] == {"mine_count": 0, "assigned_count": 0, "unassigned_count": 27, "all_count": 27}
    assert len(first["data"]["payload"]) == 25
    second = api("GET", "/conversations", params={"page": 2}).json()["data"]["payload"]
    assert len(second) == 2
    assert api("GET", "/conversations", params={"page": 3}).json()["data"]["payload"] == []
    # newest activity first
    assert first["data"]["payload"][0]["id"] == 27


def test_conversation_list_filters(api: Api, emu: Emulator) -> None:
    emu.add_inbox(8)
    jane = api.contact(name="Jane", source_id="jane-src")["contact_inbox"]["source_id"]
    one = api.conversation(source_id=jane)
    two = api.conversation(source_id=jane)
    api("POST", f"/conversations/{two['id']}/toggle_status", json={"status": "resolved"})
    other = api("POST", "/contacts", json={"name": "Bob", "inbox_id": 8}).json()["payload"]["contact_inbox"][
        "source_id"
    ]
    three = api.conversation(source_id=other)

    def ids(**params: Any) -> list[int]:
        return sorted(c["id"] for c in api("GET", "/conversations", params=params).json()["data"]["payload"])

    assert ids() == [one["id"], three["id"]]  # status defaults to open
    assert ids(status="resolved") == [two["id"]]
    assert ids(status="all") == [one["id"], two["id"], three["id"]]
    assert ids(status="all", inbox_id=8) == [three["id"]]
    assert ids(status="all", source_id="jane-src") == [one["id"], two["id"]]


def test_toggle_status_toggles_and_sets(api: Api) -> None:
    conversation = api.conversation()
    path = f"/conversations/{conversation['id']}/toggle_status"
    toggled = api("POST", path).json()
    assert toggled == {
        "meta": {},
        "payload": {
            "success": True,
            "conversation_id": conversation["id"],
            "current_status": "resolved",
            "snoozed_until": None,
        },
    }
    assert api("POST", path).json()["payload"]["current_status"] == "open"
    assert api("POST", path, json={"status": "pending"}).json()["payload"]["current_status"] == "pending"
    assert api("POST", path).json()["payload"]["current_status"] == "open"  # pending -> open
    snoozed = api("POST", path, json={"status": "snoozed", "snoozed_until": 1893456000}).json()["payload"]
    assert snoozed["current_status"] == "snoozed" and snoozed["snoozed_until"] == "2030-01-01T00:00:00.000Z"
    # an activity message records each change (never sent as a webhook)
    activity = [
        m
        for m in api("GET", f"/conversations/{conversation['id']}/messages").json()["payload"]
        if m["message_type"] == 2
    ]
    assert activity[0]["content"].startswith("Conversation was marked resolved by")
    assert "sender" not in activity[0]


def test_agent_token_reopening_assigns_the_conversation() -> None:
    with Emulator(api_access_token=TOKEN, admin=False) as emulator:
        emulator.add_inbox(7)
        api = Api(emulator)
        conversation = api.conversation(status="resolved")
        assert "assignee" not in conversation["meta"]
        api("POST", f"/conversations/{conversation['id']}/toggle_status", json={"status": "open"})
        meta = api("GET", f"/conversations/{conversation['id']}").json()["meta"]
    assert meta["assignee"]["id"] == 1 and meta["assignee_type"] == "User"


def test_incoming_message_reopens_resolved_conversation(api: Api) -> None:
    conversation = api.conversation(status="resolved")
    api.message(conversation["id"], content="back again", message_type="incoming")
    assert api("GET", f"/conversations/{conversation['id']}").json()["status"] == "open"


# -- messages (§1.4) -----------------------------------------------------------------------------------

MESSAGE_KEYS = [
    "id",
    "content",
    "inbox_id",
    "conversation_id",
    "message_type",
    "content_type",
    "status",
    "content_attributes",
    "created_at",
    "private",
    "source_id",
    "sender",
]


def test_create_message_shape(api: Api) -> None:
    conversation = api.conversation()
    message = api.message(conversation["id"], content="Hi", message_type="incoming", source_id="m-1", echo_id="echo-1")
    assert list(message) == MESSAGE_KEYS[:3] + ["echo_id"] + MESSAGE_KEYS[3:]
    assert message["echo_id"] == "echo-1"
    assert message["message_type"] == 0 and message["status"] == "sent" and message["source_id"] == "m-1"
    assert isinstance(message["created_at"], int)
    assert message["conversation_id"] == conversation["id"]
    assert message["sender"]["type"] == "contact"
    outgoing = api.message(conversation["id"], content="Hello back")
    assert outgoing["message_type"] == 1 and outgoing["sender"]["type"] == "user"
    note = api.message(conversation["id"], content="internal", private=True)
    assert note["private"] is True and note["message_type"] == 1
    # echo_id is not stored: the listing never has it
    listed = api("GET", f"/conversations/{conversation['id']}/messages").json()["payload"]
    assert all("echo_id" not in m for m in listed)
    assert [m["id"] for m in listed] == [message["id"], outgoing["id"], note["id"]]


def test_source_id_has_no_uniqueness_check(api: Api) -> None:
    conversation = api.conversation()
    first = api.message(conversation["id"], content="a", message_type="incoming", source_id="dup")
    second = api.message(conversation["id"], content="b", message_type="incoming", source_id="dup")
    assert first["id"] != second["id"] and second["source_id"] == "dup"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"content": "x", "message_type": "bogus"}, "'bogus' is not a valid message_type"),
        ({"content": "x", "message_type": 0}, "'0' is not a valid message_type"),
        ({"content": "x" * 150_001}, "Validation failed: Content is too long (maximum is 150000 characters)"),
        ({"content": "x", "content_type": "nope"}, "'nope' is not a valid content_type"),
    ],
)
def test_bad_message_is_422_error(api: Api, fields: dict, error: str) -> None:
    conversation = api.conversation()
    response = api("POST", f"/conversations/{conversation['id']}/messages", json=fields)
    assert response.status_code == 422
    assert response.json() == {"error": error}


def test_content_of_150000_characters_is_accepted(api: Api) -> None:
    conversation = api.conversation()
    assert len(api.message(conversation["id"], content="y" * 150_000)["content"]) == 150_000


def test_multipart_attachments(api: Api) -> None:
    conversation = api.conversation()
    response = api(
        "POST",
        f"/conversations/{conversation['id']}/messages",
        data={
            "content": "files",
            "message_type": "incoming",
            "content_attributes": json.dumps({"k": "v"}),
            "private": "false",
        },
        files=[
            ("attachments[]", ("photo.jpg", b"\xff\xd8jpeg", "image/jpeg")),
            ("attachments[]", ("notes.pdf", b"%PDF", "application/pdf")),
        ],
    )
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["content_attributes"] == {"k": "v"} and message["private"] is False
    image, document = message["attachments"]
    assert (image["file_type"], image["extension"], image["file_size"]) == ("image", "jpg", 6)
    assert document["file_type"] == "file" and document["thumb_url"] == ""
    assert requests.get(image["data_url"], timeout=5).content == b"\xff\xd8jpeg"


def test_more_than_15_attachments_is_422(api: Api, emu: Emulator) -> None:
    conversation = api.conversation()
    files = [("attachments[]", (f"f{i}.txt", b"x", "text/plain")) for i in range(16)]
    response = api("POST", f"/conversations/{conversation['id']}/messages", data={"content": "many"}, files=files)
    assert response.status_code == 422
    assert "Attachments" in response.json()["error"]
    assert emu.messages(conversation["id"]) == []
    ok = api("POST", f"/conversations/{conversation['id']}/messages", data={"content": "ok"}, files=files[:15])
    assert ok.status_code == 200 and len(ok.json()["attachments"]) == 15


def test_in_reply_to_records_external_id(api: Api) -> None:
    conversation = api.conversation()
    original = api.message(conversation["id"], content="q", message_type="incoming", source_id="ext-1")
    reply = api.message(conversation["id"], content="a", content_attributes={"in_reply_to": original["id"]})
    assert reply["content_attributes"] == {"in_reply_to": original["id"], "in_reply_to_external_id": "ext-1"}


def test_message_paging_latest_20_before_and_after(api: Api, emu: Emulator) -> None:
    conversation = api.conversation()
    ids = [api.message(conversation["id"], content=str(i), message_type="incoming")["id"] for i in range(130)]
    path = f"/conversations/{conversation['id']}/messages"
    latest = api("GET", path).json()
    assert set(latest) == {"meta", "payload"}
    assert [m["id"] for m in latest["payload"]] == ids[-20:]  # ascending
    assert set(latest["meta"]) == {
        "labels",
        "additional_attributes",
        "contact",
        "agent_last_seen_at",
        "assignee_last_seen_at",
    }
    before = api("GET", path, params={"before": ids[-20]}).json()["payload"]
    assert [m["id"] for m in before] == ids[-40:-20]
    after = api("GET", path, params={"after": ids[4]}).json()["payload"]
    assert [m["id"] for m in after] == ids[5:105]  # at most 100
    both = api("GET", path, params={"after": ids[10], "before": ids[15]}).json()["payload"]
    assert [m["id"] for m in both] == ids[10:15]


def test_filter_internal_messages(api: Api) -> None:
    conversation = api.conversation()
    api.message(conversation["id"], content="note", private=True)
    api("POST", f"/conversations/{conversation['id']}/toggle_status")
    visible = api.message(conversation["id"], content="hi", message_type="incoming")
    path = f"/conversations/{conversation['id']}/messages"
    assert len(api("GET", path).json()["payload"]) == 4  # note, activity, reopen activity, hi
    filtered = api("GET", path, params={"filter_internal_messages": "true"}).json()["payload"]
    assert [m["id"] for m in filtered] == [visible["id"]]


def test_message_status_update(api: Api) -> None:
    conversation = api.conversation()
    message = api.message(conversation["id"], content="Hi")
    path = f"/conversations/{conversation['id']}/messages/{message['id']}"
    delivered = api("PATCH", path, json={"status": "delivered", "external_error": "ignored"})
    assert delivered.status_code == 200
    assert delivered.json()["status"] == "delivered" and delivered.json()["content_attributes"] == {}
    assert api("PATCH", path, json={"status": "read"}).json()["status"] == "read"
    assert api("PATCH", path, json={"status": "delivered"}).json()["status"] == "read"  # read -> delivered ignored
    failed = api("PATCH", path, json={"status": "failed", "external_error": "bounced"}).json()
    assert failed["status"] == "failed" and failed["content_attributes"] == {"external_error": "bounced"}
    assert api("PATCH", path, json={"status": "bogus"}).status_code == 422
    assert (
        api("PATCH", f"/conversations/{conversation['id']}/messages/999999", json={"status": "read"}).status_code == 404
    )


def test_delete_message_is_soft(api: Api) -> None:
    conversation = api.conversation()
    message = api.message(conversation["id"], content="oops", content_attributes={"x": 1})
    deleted = api("DELETE", f"/conversations/{conversation['id']}/messages/{message['id']}")
    assert deleted.status_code == 200
    listed = api("GET", f"/conversations/{conversation['id']}/messages").json()["payload"][-1]
    assert listed["id"] == message["id"]
    assert listed["content"] == "This message was deleted"
    assert listed["content_attributes"] == {"deleted": True}


def test_flood_guard() -> None:
    with Emulator(api_access_token=TOKEN, flood_limit=3) as emulator:
        emulator.add_inbox(7)
        api = Api(emulator)
        conversation = api.conversation()
        for index in range(3):
            api.message(conversation["id"], content=str(index))
        response = api("POST", f"/conversations/{conversation['id']}/messages", json={"content": "one too many"})
        assert response.status_code == 422
        assert response.json() == {"error": "Validation failed: Too many messages"}
        emulator.flood_limit = None
        assert api("POST", f"/conversations/{conversation['id']}/messages", json={"content": "ok"}).status_code == 200


def test_python_state_snapshots(api: Api, emu: Emulator) -> None:
    conversation = api.conversation()
    api.message(conversation["id"], content="Hi", message_type="incoming")
    reply = emu.agent_reply(conversation["id"], "Hello", private=True)
    assert reply["private"] is True and reply["message_type"] == 1
    assert [c["id"] for c in emu.conversations()] == [conversation["id"]]
    assert [m["content"] for m in emu.messages(conversation["id"])] == ["Hi", "Hello"]
    assert len(emu.contacts()) == 1
    resolved = emu.set_status(conversation["id"], "resolved")
    assert resolved["status"] == "resolved"
    deleted = emu.delete_message(conversation["id"], reply["id"])
    assert deleted["content_attributes"] == {"deleted": True}
    with pytest.raises(LookupError):
        emu.agent_reply(999, "x")
    with pytest.raises(ValueError, match="valid status"):
        emu.set_status(conversation["id"], "bogus")
    emu.reset()
    assert emu.conversations() == [] and emu.requests_log == []


# -- faults ------------------------------------------------------------------------------------------------


def _message_path(conversation: dict[str, Any]) -> str:
    return f"/conversations/{conversation['id']}/messages"


def test_fail_next_500_does_nothing(api: Api, emu: Emulator) -> None:
    conversation = api.conversation()
    emu.fail_next(method="POST", path="/messages")
    response = api("POST", _message_path(conversation), json={"content": "lost"})
    assert response.status_code == 500
    assert response.json() == {"status": 500, "error": "Internal Server Error"}
    assert emu.messages(conversation["id"]) == []
    assert api("POST", _message_path(conversation), json={"content": "ok"}).status_code == 200  # only the next one
    failed, succeeded = emu.requests_log[-2:]
    assert failed.fault == "500" and succeeded.fault is None
    assert failed == ("POST", f"/api/v1/accounts/1{_message_path(conversation)}", 500)


def test_fail_next_429_is_rack_attack_text(api: Api, emu: Emulator) -> None:
    emu.fail_next(2, status=429)
    for _ in range(2):
        response = api("GET", "/contacts")
        assert response.status_code == 429
        assert response.text == "Retry later\n"
        assert response.headers["Content-Type"] == "text/plain"
        assert "Retry-After" not in response.headers
    assert api("GET", "/contacts").status_code == 200


def test_fail_next_custom_body_and_filters(api: Api, emu: Emulator) -> None:
    emu.fail_next(status=503, body={"error": "maintenance"}, method="GET", path="/inboxes")
    assert api("GET", "/contacts").status_code == 200  # path does not match
    assert api("POST", "/contacts", json={"name": "x"}).status_code == 200  # method does not match
    response = api("GET", "/inboxes/7")
    assert (response.status_code, response.json()) == (503, {"error": "maintenance"})
    assert emu.pending_faults == 0
    emu.fail_next(status=404)
    response = api("GET", "/contacts")
    assert (response.status_code, response.json()) == (404, {"error": "Resource could not be found"})


def test_fail_next_after_effect_stores_then_errors(api: Api, emu: Emulator) -> None:
    conversation = api.conversation()
    emu.fail_next(path="/messages", after_effect=True)
    response = api("POST", _message_path(conversation), json={"content": "stored anyway", "source_id": "m-42"})
    assert response.status_code == 500
    (stored,) = emu.messages(conversation["id"])
    assert stored["source_id"] == "m-42" and stored["content"] == "stored anyway"


def test_delay_next_after_effect_times_out_the_client_but_stores(api: Api, emu: Emulator) -> None:
    conversation = api.conversation()
    emu.delay_next(seconds=0.6, path="/messages")
    with pytest.raises(requests.ReadTimeout):
        api("POST", _message_path(conversation), json={"content": "slow", "source_id": "m-slow"}, timeout=0.2)
    # logged at once (status of the late answer), and performed before the delay:
    # visible to a reconciling GET right away
    assert emu.requests_log[-1].fault == "timeout" and emu.requests_log[-1].status == 200
    listed = api("GET", _message_path(conversation)).json()["payload"]
    assert [m["source_id"] for m in listed] == ["m-slow"]


def test_delay_next_without_effect_stores_nothing(api: Api, emu: Emulator) -> None:
    conversation = api.conversation()
    emu.delay_next(seconds=0.4, path="/messages", after_effect=False)
    with pytest.raises(requests.ConnectionError):  # a reset after the delay (no read timeout set here)
        api("POST", _message_path(conversation), json={"content": "never"}, timeout=5)
    assert emu.messages(conversation["id"]) == []
    assert emu.requests_log[-1].fault == "timeout" and emu.requests_log[-1].status == 0


def test_drop_next_resets_the_connection(api: Api, emu: Emulator) -> None:
    conversation = api.conversation()
    emu.drop_next(path="/messages")
    with pytest.raises(requests.ConnectionError):
        api("POST", _message_path(conversation), json={"content": "dropped"})
    assert emu.messages(conversation["id"]) == []
    emu.drop_next(path="/messages", after_effect=True)
    with pytest.raises(requests.ConnectionError):
        api("POST", _message_path(conversation), json={"content": "kept", "source_id": "k"})
    assert [m["source_id"] for m in emu.messages(conversation["id"])] == ["k"]
    assert emu.requests_log[-1].fault == "reset" and emu.requests_log[-1].status == 0
    # the session recovers on a new connection
    assert api("GET", _message_path(conversation)).status_code == 200


def test_random_faults_are_seeded_and_only_for_mutating_requests(emu: Emulator) -> None:
    def run() -> list[Any]:
        emu.reset()
        emu.random_faults(0.5, seed=7, kinds=("500", "429"))
        api = Api(emu)
        outcomes = []
        for index in range(30):
            response = api("POST", "/contacts", json={"name": f"c{index}"})
            outcomes.append(response.status_code)
            assert api("GET", "/contacts").status_code == 200  # reads are never faulted
        emu.clear_faults()
        return outcomes

    first, second = run(), run()
    assert first == second
    assert {200, 500, 429} <= set(first)
    emu.random_faults(0.9, seed=1)
    emu.random_faults(0)  # rate 0 switches them off
    assert all(Api(emu)("POST", "/contacts", json={}).status_code == 200 for _ in range(10))


def test_random_fault_kinds_are_validated(emu: Emulator) -> None:
    with pytest.raises(ValueError):
        emu.random_faults(0.3, kinds=("explode",))
    with pytest.raises(ValueError):
        emu.random_faults(1.5)


def test_stop_cuts_keep_alive_connections_and_restart_keeps_state() -> None:
    emulator = Emulator(api_access_token=TOKEN).start()
    try:
        emulator.add_inbox(7)
        api = Api(emulator)
        conversation = api.conversation()
        emulator.stop()
        with pytest.raises(requests.ConnectionError):  # the pooled connection is gone too
            api("GET", f"/conversations/{conversation['id']}", timeout=2)
        emulator.start()
        assert api("GET", f"/conversations/{conversation['id']}").status_code == 200
    finally:
        emulator.stop()


def test_conversation_create_with_inbox_but_no_contact_falls_back_to_source_id(api: Api, emu: Emulator) -> None:
    """unilink-api.md §1.3: without contact_id the platform looks the contact inbox up by source_id."""
    created = api("POST", "/contacts", json={"name": "Ann", "inbox_id": 7, "source_id": "ann-session"})
    assert created.status_code == 200
    response = api("POST", "/conversations", json={"source_id": "ann-session", "inbox_id": 7})
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["sender"]["name"] == "Ann"
    missing = api("POST", "/conversations", json={"source_id": "nobody", "inbox_id": 7})
    assert missing.status_code == 404
    assert missing.json() == {"error": "Resource could not be found"}
