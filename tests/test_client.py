"""UnilinkClient against a real HTTP server on loopback (pytest-httpserver).

Every request the client sends in these tests, and every response the server gives, is checked
against the platform's OpenAPI contract (django_unilink.testing.contract) when the test ends.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.test import override_settings
from pytest_httpserver import HTTPServer
from requests.adapters import HTTPAdapter
from werkzeug import Request, Response

from django_unilink import __version__, exceptions
from django_unilink.client import MAX_ATTACHMENTS, UnilinkClient, default_retry
from django_unilink.conf import get_inbox_config
from django_unilink.testing.contract import validate_exchanges
from tests import client_payloads as p
from tests.client_support import make_httpserver  # noqa: F401  # keeps the api_access_token header

A = f"/api/v1/accounts/{p.ACCOUNT_ID}"


@dataclass
class Api:
    server: HTTPServer
    client: UnilinkClient
    #: Set False in tests that serve deliberately off-contract responses.
    check_responses: bool = True

    def requests(self) -> list[Request]:
        return [request for request, _ in self.server.log]

    def json_bodies(self) -> list[dict]:
        """The JSON bodies of the requests that had one."""
        return [json.loads(request.get_data()) for request in self.requests() if request.get_data()]


@pytest.fixture
def api(httpserver: HTTPServer) -> Iterator[Api]:
    client = UnilinkClient(httpserver.url_for("/"), p.ACCOUNT_ID, p.TOKEN, connect_timeout=2, read_timeout=5)
    holder = Api(httpserver, client)
    yield holder
    client.close()
    httpserver.check_assertions()
    # The contract: every request sent (and every response served) matches the spec + known gaps.
    validate_exchanges(httpserver.log, responses=holder.check_responses)


# -- construction, headers, config ---------------------------------------------------------------


def test_every_request_carries_token_accept_and_user_agent(api: Api) -> None:
    api.server.expect_request("/api/v1/profile", method="GET").respond_with_json(p.profile())
    api.client.get_profile()
    (request,) = api.requests()
    assert request.headers["api_access_token"] == p.TOKEN
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == f"django-unilink/{__version__}"


def test_custom_user_agent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/profile").respond_with_json(p.profile())
    with UnilinkClient(httpserver.url_for("/"), 1, p.TOKEN, user_agent="shop/2.0") as client:
        client.get_profile()
    assert httpserver.log[0][0].headers["User-Agent"] == "shop/2.0"


def test_token_is_not_kept_on_a_shared_session(httpserver: HTTPServer) -> None:
    session = requests.Session()
    httpserver.expect_request("/api/v1/profile").respond_with_json(p.profile())
    UnilinkClient(httpserver.url_for("/"), 1, "token-one", session=session).get_profile()
    UnilinkClient(httpserver.url_for("/"), 1, "token-two", session=session).get_profile()
    assert [r.headers["api_access_token"] for r, _ in httpserver.log] == ["token-one", "token-two"]
    assert "api_access_token" not in session.headers


def test_repr_hides_the_token() -> None:
    client = UnilinkClient("https://support.example.com/", 1, p.TOKEN)
    assert p.TOKEN not in repr(client)
    assert repr(client) == "<UnilinkClient https://support.example.com account=1 api_access_token='***'>"


def test_own_session_has_small_get_only_retries() -> None:
    client = UnilinkClient("https://support.example.com", 1, p.TOKEN, connect_timeout=1.5, read_timeout=9)
    adapter = client.session.get_adapter("https://support.example.com")
    assert isinstance(adapter, HTTPAdapter)
    retry = adapter.max_retries
    assert (retry.total, retry.connect, retry.status) == (2, 2, 0)
    assert retry.allowed_methods == frozenset({"GET"})
    assert client.timeout == (1.5, 9.0)
    assert default_retry().is_retry("POST", 503) is False


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("support.example.com", 1, "t"), r"absolute http\(s\) URL"),
        (("ftp://support.example.com", 1, "t"), r"absolute http\(s\) URL"),
        (("https://support.example.com", 1, ""), "api_access_token is empty"),
        (("https://support.example.com", "one", "t"), "account_id must be a positive integer"),
        (("https://support.example.com", 0, "t"), "account_id must be a positive integer"),
    ],
)
def test_constructor_rejects_bad_arguments(args: tuple, fragment: str) -> None:
    with pytest.raises(exceptions.InvalidInputError, match=fragment):
        UnilinkClient(*args)


def test_from_config_reads_timeouts_and_user_agent_at_call_time() -> None:
    base = {"BASE_URL": "https://support.example.com", "ACCOUNT_ID": "3", "API_ACCESS_TOKEN": p.TOKEN, "INBOX_ID": 7}
    with override_settings(UNILINK={**base, "CONNECT_TIMEOUT": 1.25, "READ_TIMEOUT": 4, "USER_AGENT": "x/1"}):
        client = UnilinkClient.from_config(get_inbox_config())
    assert (client.base_url, client.account_id, client.timeout, client.user_agent) == (
        "https://support.example.com",
        3,
        (1.25, 4.0),
        "x/1",
    )
    with override_settings(UNILINK=base):
        client = UnilinkClient.from_config(get_inbox_config())
    assert client.timeout == (5.0, 30.0)
    assert client.user_agent == f"django-unilink/{__version__}"


def test_from_config_names_the_setting_to_fix() -> None:
    with override_settings(UNILINK={"BASE_URL": "https://support.example.com", "ACCOUNT_ID": 1, "INBOX_ID": 7}):
        with pytest.raises(exceptions.ConfigurationError, match=r"UNILINK\['API_ACCESS_TOKEN'\]"):
            UnilinkClient.from_config(get_inbox_config())


# -- contacts -------------------------------------------------------------------------------------


def test_create_contact_unwraps_payload(api: Api) -> None:
    body = {"payload": {"contact": p.contact(42), "contact_inbox": {"inbox": p.raw_inbox_record(), "source_id": "s-1"}}}
    api.server.expect_request(f"{A}/contacts", method="POST").respond_with_json(body)
    result = api.client.create_contact(
        inbox_id=7,
        source_id="s-1",
        name="Alice",
        identifier="user-42",
        email="a@example.com",
        custom_attributes={"x": 1},
    )
    assert result["contact"]["id"] == 42
    assert result["contact_inbox"]["source_id"] == "s-1"
    assert result["contact_inbox"]["inbox"]["channel_type"] == "Channel::Api"
    assert api.json_bodies() == [
        {
            "inbox_id": 7,
            "source_id": "s-1",
            "name": "Alice",
            "identifier": "user-42",
            "email": "a@example.com",
            "custom_attributes": {"x": 1},
        }
    ]


def test_create_contact_without_inbox_has_no_contact_inbox(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts", method="POST").respond_with_json(
        {"payload": {"contact": p.contact(43, source_id=None), "contact_inbox": None}}
    )
    result = api.client.create_contact(name="Bob", phone_number="+15550100")
    assert result == {"contact": p.contact(43, source_id=None), "contact_inbox": None}
    assert api.json_bodies() == [{"name": "Bob", "phone_number": "+15550100"}]


def test_create_contact_tolerates_the_unwrapped_shape_of_the_swagger_file(api: Api) -> None:
    api.check_responses = False  # this shape is what the swagger file (wrongly) documents
    api.server.expect_request(f"{A}/contacts", method="POST").respond_with_json(p.contact(44))
    assert api.client.create_contact(inbox_id=7) == {"contact": p.contact(44), "contact_inbox": None}


def test_create_contact_source_id_needs_inbox(api: Api) -> None:
    with pytest.raises(exceptions.InvalidInputError, match="needs inbox_id"):
        api.client.create_contact(source_id="s-1")
    assert api.requests() == []


def test_get_and_update_contact(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts/42", method="GET").respond_with_json({"payload": p.contact(42)})
    api.server.expect_request(f"{A}/contacts/42", method="PUT").respond_with_json(
        {"payload": p.contact(42, name="Alicia")}
    )
    assert api.client.get_contact(42)["identifier"] == "user-42"
    assert api.client.update_contact(42, name="Alicia", custom_attributes={"plan": "pro"})["name"] == "Alicia"
    assert api.json_bodies()[-1] == {"name": "Alicia", "custom_attributes": {"plan": "pro"}}


def test_update_contact_rejects_unknown_fields_before_sending(api: Api) -> None:
    with pytest.raises(exceptions.InvalidInputError, match="unknown field.*nickname"):
        api.client.update_contact(42, nickname="Al")
    with pytest.raises(exceptions.InvalidInputError, match="at least one field"):
        api.client.update_contact(42)
    with pytest.raises(exceptions.InvalidInputError, match="contact_id must be a positive integer"):
        api.client.get_contact("42/../../profile")  # type: ignore[arg-type]
    assert api.requests() == []


def test_search_contacts_pages_until_has_more_is_false(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts/search", query_string={"q": "example.com", "page": "1"}).respond_with_json(
        {"meta": {"count": 2, "current_page": "1", "has_more": True}, "payload": [p.contact(1), p.contact(2)]}
    )
    api.server.expect_request(f"{A}/contacts/search", query_string={"q": "example.com", "page": "2"}).respond_with_json(
        {"meta": {"count": 1, "current_page": "2", "has_more": False}, "payload": [p.contact(3)]}
    )
    assert [c["id"] for c in api.client.search_contacts("example.com")] == [1, 2, 3]
    assert len(api.requests()) == 2


def test_list_contacts_pages_until_an_empty_page(api: Api) -> None:
    for page, ids in ((1, range(1, 16)), (2, range(16, 31)), (3, range(0))):
        api.server.expect_request(
            f"{A}/contacts", method="GET", query_string={"sort": "-created_at", "page": str(page)}
        ).respond_with_json({"meta": {"count": 30, "current_page": str(page)}, "payload": [p.contact(i) for i in ids]})
    contacts = list(api.client.list_contacts(sort="-created_at"))
    assert [c["id"] for c in contacts] == list(range(1, 31))
    assert [r.args["page"] for r in api.requests()] == ["1", "2", "3"]


def test_list_contacts_is_lazy(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts", query_string={"page": "1"}).respond_with_json(
        {"meta": {"count": 30, "current_page": "1"}, "payload": [p.contact(i) for i in range(1, 16)]}
    )
    iterator = api.client.list_contacts()
    assert next(iterator)["id"] == 1
    assert len(api.requests()) == 1  # page 2 is asked for only when page 1 is used up


def test_filter_contacts_posts_conditions_on_every_page(api: Api) -> None:
    conditions: list[dict[str, Any]] = [
        {"attribute_key": "email", "filter_operator": "contains", "values": ["example.com"], "query_operator": "AND"},
        {"attribute_key": "name", "filter_operator": "equal_to", "values": ["Alice"], "query_operator": None},
    ]
    for page, ids in ((1, range(1, 16)), (2, range(16, 19)), (3, range(0))):
        api.server.expect_request(
            f"{A}/contacts/filter", method="POST", query_string={"page": str(page)}
        ).respond_with_json({"meta": {"count": 18, "current_page": page}, "payload": [p.contact(i) for i in ids]})
    assert len(list(api.client.filter_contacts(conditions))) == 18
    assert api.json_bodies() == [{"payload": conditions}] * 3


def test_pagination_that_does_not_advance_is_an_error(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts").respond_with_json(
        {"meta": {"count": 30, "current_page": "1"}, "payload": [p.contact(1)]}
    )
    with pytest.raises(exceptions.APIError, match="repeated the previous page"):
        list(api.client.list_contacts())


def test_create_contact_inbox(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts/42/contact_inboxes", method="POST").respond_with_json(
        {"source_id": "s-2", "inbox": p.slim_inbox()}
    )
    result = api.client.create_contact_inbox(42, inbox_id=7, source_id="s-2", hmac_verified=True)
    assert result == {"source_id": "s-2", "inbox": p.slim_inbox()}
    assert api.json_bodies() == [{"inbox_id": 7, "source_id": "s-2", "hmac_verified": True}]


# -- conversations --------------------------------------------------------------------------------


def test_create_conversation_returns_the_bare_object(api: Api) -> None:
    api.server.expect_request(f"{A}/conversations", method="POST").respond_with_json(p.conversation(12))
    first = {"content": "Hello", "message_type": "incoming"}
    result = api.client.create_conversation(
        source_id="s-1", inbox_id=7, contact_id=42, status="open", custom_attributes={"thread": "t-1"}, message=first
    )
    assert result["id"] == 12
    assert api.json_bodies() == [
        {
            "source_id": "s-1",
            "inbox_id": 7,
            "contact_id": 42,
            "status": "open",
            "custom_attributes": {"thread": "t-1"},
            "message": first,
        }
    ]


def test_create_conversation_checks_arguments_before_sending(api: Api) -> None:
    with pytest.raises(exceptions.InvalidInputError, match="status must be one of"):
        api.client.create_conversation(source_id="s", inbox_id=7, status="closed")
    with pytest.raises(exceptions.InvalidInputError, match="message_type"):
        api.client.create_conversation(source_id="s", inbox_id=7, message={"content": "x", "message_type": "activity"})
    with pytest.raises(exceptions.InvalidInputError, match="source_id"):
        api.client.create_conversation(source_id="", inbox_id=7)
    assert api.requests() == []


def test_get_conversation(api: Api) -> None:
    api.server.expect_request(f"{A}/conversations/12").respond_with_json(p.conversation(12, status="snoozed"))
    assert api.client.get_conversation(12)["status"] == "snoozed"


def test_list_conversations_unwraps_data_and_pages_until_empty(api: Api) -> None:
    meta = {"mine_count": 0, "assigned_count": 0, "unassigned_count": 27, "all_count": 27}
    query = {"status": "all", "inbox_id": "7", "source_id": "s-1", "assignee_type": "all", "sort_by": "created_at_asc"}
    for page, ids in ((1, range(1, 26)), (2, range(26, 28)), (3, range(0))):
        api.server.expect_request(
            f"{A}/conversations", method="GET", query_string={**query, "page": str(page)}
        ).respond_with_json({"data": {"meta": meta, "payload": [p.conversation(i) for i in ids]}})
    result = list(
        api.client.list_conversations(
            status="all", inbox_id=7, source_id="s-1", assignee_type="all", sort_by="created_at_asc"
        )
    )
    assert [c["id"] for c in result] == list(range(1, 28))
    assert len(api.requests()) == 3


def test_list_conversations_from_a_later_page(api: Api) -> None:
    api.server.expect_request(f"{A}/conversations", query_string={"page": "4"}).respond_with_json(
        {"data": {"meta": {}, "payload": []}}
    )
    assert list(api.client.list_conversations(page=4)) == []


def test_toggle_status_sends_unix_seconds_and_returns_the_payload(api: Api) -> None:
    result = {"success": True, "conversation_id": 12, "current_status": "snoozed", "snoozed_until": None}
    api.server.expect_request(f"{A}/conversations/12/toggle_status", method="POST").respond_with_json(
        {"meta": {}, "payload": result}
    )
    until = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert api.client.toggle_status(12, "snoozed", snoozed_until=until) == result
    assert api.client.toggle_status(12) == result  # no status: the platform toggles
    assert api.json_bodies() == [{"status": "snoozed", "snoozed_until": int(until.timestamp())}, {}]


def test_toggle_status_rejects_naive_datetimes_and_unknown_statuses(api: Api) -> None:
    with pytest.raises(exceptions.InvalidInputError, match="aware datetime"):
        api.client.toggle_status(12, "snoozed", snoozed_until=datetime(2026, 7, 1) + timedelta(hours=1))
    with pytest.raises(exceptions.InvalidInputError, match="status must be one of"):
        api.client.toggle_status(12, "closed")
    assert api.requests() == []


# -- messages -------------------------------------------------------------------------------------


def test_list_messages_passes_before_and_after(api: Api) -> None:
    meta: dict[str, Any] = {"labels": [], "additional_attributes": {}, "contact": {}, "agent_last_seen_at": None}
    api.server.expect_request(f"{A}/conversations/12/messages", query_string={"before": "50"}).respond_with_json(
        {"meta": meta, "payload": [p.message(48), p.message(49)]}
    )
    api.server.expect_request(f"{A}/conversations/12/messages", query_string="").respond_with_json(
        {"meta": meta, "payload": [p.message(60)]}
    )
    assert [m["id"] for m in api.client.list_messages(12, before=50)] == [48, 49]
    assert [m["id"] for m in api.client.list_messages(12)] == [60]


def test_iter_messages_pages_with_after_until_a_short_page(api: Api) -> None:
    pages = {0: range(1, 101), 100: range(101, 201), 200: range(201, 231)}
    for after, ids in pages.items():
        api.server.expect_request(
            f"{A}/conversations/12/messages", query_string={"after": str(after)}
        ).respond_with_json({"meta": {}, "payload": [p.message(i) for i in ids]})
    assert [m["id"] for m in api.client.iter_messages(12)] == list(range(1, 231))
    assert [r.args["after"] for r in api.requests()] == ["0", "100", "200"]


def test_iter_messages_from_a_known_id_stops_on_an_empty_page(api: Api) -> None:
    api.server.expect_request(f"{A}/conversations/12/messages", query_string={"after": "230"}).respond_with_json(
        {"meta": {}, "payload": []}
    )
    assert list(api.client.iter_messages(12, after=230)) == []
    assert len(api.requests()) == 1


def test_create_message_as_json(api: Api) -> None:
    api.server.expect_request(f"{A}/conversations/12/messages", method="POST").respond_with_json(
        p.message(300, message_type=0, source_id="ours-1", echo_id="e-1")
    )
    result = api.client.create_message(
        12,
        content="Hi there",
        message_type="incoming",
        content_attributes={"in_reply_to": 299},
        source_id="ours-1",
        echo_id="e-1",
    )
    assert result["id"] == 300
    (request,) = api.requests()
    assert request.mimetype == "application/json"
    assert json.loads(request.get_data()) == {
        "content": "Hi there",
        "message_type": "incoming",
        "private": False,
        "content_attributes": {"in_reply_to": 299},
        "source_id": "ours-1",
        "echo_id": "e-1",
    }


def test_create_message_with_attachments_is_multipart(api: Api) -> None:
    api.server.expect_request(f"{A}/conversations/12/messages", method="POST").respond_with_json(p.message(301))
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    api.client.create_message(
        12,
        content="Two files",
        private=True,
        content_attributes={"k": "v"},
        source_id="ours-2",
        attachments=[("shot.png", png, "image/png"), ("notes.txt", io.BytesIO(b"hello\n"), "text/plain")],
    )
    (request,) = api.requests()
    assert request.mimetype == "multipart/form-data"
    files = request.files.getlist("attachments[]")
    assert [(f.filename, f.mimetype, f.read()) for f in files] == [
        ("shot.png", "image/png", png),
        ("notes.txt", "text/plain", b"hello\n"),
    ]
    assert request.form.to_dict() == {
        "content": "Two files",
        "message_type": "outgoing",
        "private": "true",
        "content_attributes": '{"k": "v"}',
        "source_id": "ours-2",
    }


def test_create_message_attachment_only(api: Api) -> None:
    api.server.expect_request(f"{A}/conversations/12/messages", method="POST").respond_with_json(p.message(302))
    api.client.create_message(12, attachments=[("a.pdf", b"%PDF-1.4", "application/pdf")])
    assert "content" not in api.requests()[0].form


def test_create_message_checks_arguments_before_sending(api: Api) -> None:
    too_many = [(f"f{i}.txt", b"x", "text/plain") for i in range(MAX_ATTACHMENTS + 1)]
    with pytest.raises(exceptions.InvalidInputError, match="at most 15 attachments; got 16"):
        api.client.create_message(12, content="x", attachments=too_many)
    with pytest.raises(exceptions.InvalidInputError, match="content or at least one attachment"):
        api.client.create_message(12)
    with pytest.raises(exceptions.InvalidInputError, match="message_type must be one of"):
        api.client.create_message(12, content="x", message_type="activity")
    with pytest.raises(exceptions.InvalidInputError, match="at most 150000"):
        api.client.create_message(12, content="x" * 150_001)
    with pytest.raises(exceptions.InvalidInputError, match=r"attachments\[0\]"):
        api.client.create_message(12, attachments=[("only-a-name.txt",)])  # type: ignore[list-item]
    assert api.requests() == []


def test_update_message_status(api: Api) -> None:
    api.server.expect_request(f"{A}/conversations/12/messages/300", method="PATCH").respond_with_json(
        p.message(300, status="failed", content_attributes={"external_error": "bounced"})
    )
    result = api.client.update_message_status(12, 300, "failed", external_error="bounced")
    assert result["status"] == "failed"
    assert api.json_bodies() == [{"status": "failed", "external_error": "bounced"}]
    with pytest.raises(exceptions.InvalidInputError, match="status must be one of"):
        api.client.update_message_status(12, 300, "seen")


def test_delete_message_returns_the_message_or_none(api: Api) -> None:
    deleted = p.message(300, content="This message was deleted", content_attributes={"deleted": True})
    api.server.expect_ordered_request(f"{A}/conversations/12/messages/300", method="DELETE").respond_with_json(deleted)
    api.server.expect_ordered_request(f"{A}/conversations/12/messages/300", method="DELETE").respond_with_data(
        "", status=200
    )
    assert api.client.delete_message(12, 300) == deleted
    assert api.client.delete_message(12, 300) is None


# -- inboxes / profile ----------------------------------------------------------------------------


def test_get_inbox_and_profile(api: Api) -> None:
    api.server.expect_request(f"{A}/inboxes/7").respond_with_json(p.api_inbox())
    api.server.expect_request("/api/v1/profile").respond_with_json(p.profile())
    inbox = api.client.get_inbox(7)
    assert (inbox["channel_type"], inbox["webhook_url"]) == ("Channel::Api", p.api_inbox()["webhook_url"])
    profile = api.client.get_profile()
    assert profile["accounts"][0]["role"] == "administrator"
    assert profile["access_token"] == p.TOKEN  # success bodies are returned untouched (scrubbing is for errors)


# -- HTTP errors ----------------------------------------------------------------------------------

ERROR_CASES = [
    (401, p.INVALID_TOKEN, exceptions.AuthenticationError, "Invalid Access Token"),
    (401, p.DEVISE_SIGN_IN, exceptions.AuthenticationError, "You need to sign in"),
    (401, p.PUNDIT_DENIED, exceptions.AuthenticationError, "not authorized to do this action"),
    (401, p.BOT_DENIED, exceptions.AuthenticationError, "agent bot.*User"),
    (401, p.NOT_IN_ACCOUNT, exceptions.AuthenticationError, "not a member of this account"),
    (402, p.PAYMENT_REQUIRED, exceptions.PaymentRequiredError, "upgrade your plan"),
    (403, p.STATUS_ONLY_API, exceptions.PermissionDeniedError, "only allowed for API inboxes"),
    (404, p.NOT_FOUND, exceptions.NotFoundError, "Resource could not be found"),
    (422, p.RECORD_INVALID, exceptions.ValidationError, r"Email has already been taken \(fields: email\)"),
    (422, p.PARAM_MISSING, exceptions.ValidationError, "param is missing"),
    (500, {"error": "Internal Server Error"}, exceptions.ServerError, "Internal Server Error"),
]


@pytest.mark.parametrize(("status", "body", "error_class", "pattern"), ERROR_CASES)
def test_http_errors_map_to_classes(
    api: Api,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: dict,
    error_class: type[exceptions.APIError],
    pattern: str,
) -> None:
    api.server.expect_request(f"{A}/contacts/42").respond_with_json(body, status=status)
    caplog.set_level(logging.DEBUG, logger="django_unilink.client")
    with pytest.raises(error_class, match=pattern) as info:
        api.client.get_contact(42)
    err = info.value
    assert type(err) is error_class
    assert (err.status, err.body, err.method) == (status, body, "GET")
    assert err.url is not None and err.url.endswith(f"{A}/contacts/42")
    assert f"GET {A}/contacts/42 returned HTTP {status}" in str(err)
    assert p.TOKEN not in str(err) + repr(err) + caplog.text
    assert len(api.requests()) == 1  # statuses are never retried by the transport


def test_validation_error_exposes_attributes(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts", method="POST").respond_with_json(p.RECORD_INVALID, status=422)
    with pytest.raises(exceptions.ValidationError) as info:
        api.client.create_contact(inbox_id=7, email="taken@example.com")
    assert info.value.attributes == ["email"]
    assert info.value.remote_message == "Email has already been taken"


def test_rack_attack_429_is_rate_limited_without_a_delay(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts/search").respond_with_data(
        "Retry later\n", status=429, content_type="text/plain"
    )
    with pytest.raises(exceptions.RateLimitedError) as info:
        list(api.client.search_contacts("alice"))
    err = info.value
    assert (err.status, err.retry_after, err.retryable, err.body) == (429, None, True, "Retry later\n")
    assert "Retry later" in str(err) and "No Retry-After" in str(err)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0", 0.0), ("Thu, 01 Jan 2099 00:00:00 GMT", None), ("soon", None)],
)
def test_429_reads_retry_after(api: Api, header: str, expected: float | None) -> None:
    api.server.expect_request(f"{A}/contacts/42").respond_with_data(
        "Retry later\n", status=429, content_type="text/plain", headers={"Retry-After": header}
    )
    with pytest.raises(exceptions.RateLimitedError) as info:
        api.client.get_contact(42)
    if header.startswith("Thu"):  # an HTTP date: seconds from now, in the future
        assert info.value.retry_after is not None and info.value.retry_after > 0
    else:
        assert info.value.retry_after == expected


def test_proxy_error_page_is_a_server_error_with_an_excerpt(api: Api) -> None:
    html = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 2000 + "</body></html>"
    api.server.expect_request(f"{A}/conversations/12").respond_with_data(html, status=502, content_type="text/html")
    with pytest.raises(exceptions.ServerError, match="502 Bad Gateway") as info:
        api.client.get_conversation(12)
    assert info.value.retryable is True
    assert len(str(info.value)) < 500


def test_redirect_is_reported_not_followed(api: Api) -> None:
    api.check_responses = False  # a misconfigured proxy, not the platform
    api.server.expect_request("/api/v1/profile").respond_with_data(
        "", status=301, headers={"Location": "https://support.example.com/api/v1/profile"}
    )
    with pytest.raises(exceptions.APIError, match="redirect to https://support.example.com"):
        api.client.get_profile()
    assert len(api.requests()) == 1


def test_non_json_success_body_is_an_error(api: Api) -> None:
    api.check_responses = False
    api.server.expect_request("/api/v1/profile").respond_with_data("<html>login</html>", content_type="text/html")
    with pytest.raises(exceptions.APIError, match="not JSON"):
        api.client.get_profile()


def test_token_never_appears_in_errors_tracebacks_or_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # A body that echoes the token (a proxy's debug page, say) is scrubbed before it is quoted.
    api.server.expect_request(f"{A}/contacts/42").respond_with_json(
        {"error": f"Invalid Access Token {p.TOKEN}"}, status=401
    )
    with pytest.raises(exceptions.AuthenticationError) as info:
        api.client.get_contact(42)
    err = info.value
    text = str(err) + repr(err) + repr(err.body) + "".join(traceback.format_exception(err)) + caplog.text
    assert "Invalid Access Token ***" in str(err)
    assert p.TOKEN not in text
    assert p.TOKEN not in repr(pickle.loads(pickle.dumps(err)).__dict__)


def test_debug_log_line_per_request(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    api.server.expect_request(f"{A}/conversations/12").respond_with_json(p.conversation(12))
    caplog.set_level(logging.DEBUG, logger="django_unilink.client")
    api.client.get_conversation(12)
    (record,) = [r for r in caplog.records if r.name == "django_unilink.client"]
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith(f"GET {A}/conversations/12 -> 200 in ")
    assert record.getMessage().endswith(" ms")
    assert p.TOKEN not in caplog.text and "api_access_token" not in caplog.text


def test_errors_survive_pickling_for_celery(api: Api) -> None:
    api.server.expect_request(f"{A}/contacts/42").respond_with_data(
        "Retry later\n", status=429, content_type="text/plain", headers={"Retry-After": "12"}
    )
    with pytest.raises(exceptions.RateLimitedError) as info:
        api.client.get_contact(42)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (type(copy), copy.status, copy.retry_after, str(copy)) == (
        exceptions.RateLimitedError,
        429,
        12.0,
        str(info.value),
    )


def test_slow_handler_past_the_read_timeout(httpserver: HTTPServer) -> None:
    import threading

    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(5)  # until the client has given up
        return Response("{}", content_type="application/json")

    httpserver.expect_request(f"{A}/conversations", method="POST").respond_with_handler(slow)
    client = UnilinkClient(httpserver.url_for("/"), 1, p.TOKEN, read_timeout=0.3)
    try:
        with pytest.raises(exceptions.TimeoutError) as info:
            client.create_conversation(source_id="s-1", inbox_id=7)
    finally:
        release.set()
    for _ in range(100):  # let the handler finish so its log entry does not leak into the next test
        if httpserver.log:
            break
        threading.Event().wait(0.05)
    assert len(httpserver.log) == 1  # a POST is never retried after it was sent
    assert info.value.sent is True and info.value.retryable is True
    assert "no answer within 0.3 s" in str(info.value)
    assert p.TOKEN not in str(info.value) + repr(info.value)
