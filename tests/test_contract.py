"""The contract itself: the shipped spec, the table of known gaps, and the validators."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
import requests

from django_unilink.testing.contract import (
    KNOWN_SPEC_GAPS,
    SPEC_PATH,
    Contract,
    ContractViolation,
    patched_spec,
    validate_request,
    validate_response,
)
from tests import client_payloads as p

A = "/api/v1/accounts/1"
TOKEN_HEADER = {"api_access_token": "x"}
UPSTREAM_BLOB = "f9ff31a7e623d71af47e32aa392e24d843be7982"  # chatwoot@f66b551c swagger/tag_groups/...


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_shipped_spec_is_the_unchanged_upstream_file() -> None:
    data = SPEC_PATH.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    assert blob == UPSTREAM_BLOB
    assert (SPEC_PATH.parent / "LICENSE.chatwoot").read_text().startswith("Copyright")


def test_patched_spec_is_valid_openapi() -> None:
    from openapi_spec_validator import validate

    validate(patched_spec())  # raises on an invalid document


def test_gap_table_is_well_formed() -> None:
    keys = [gap.key for gap in KNOWN_SPEC_GAPS]
    assert len(keys) == len(set(keys))
    paths = patched_spec()["paths"]
    for gap in KNOWN_SPEC_GAPS:
        assert re.fullmatch(r"unilink-api\.md §\d+\.?\d*(, §\d+\.?\d*)*", gap.reference), gap.key
        assert gap.direction in ("request", "response", "both")
        assert gap.platform.endswith("."), gap.key
        method, _, path = gap.operation.partition(" ")
        if method.isupper():  # a single operation: it must exist (after the edits)
            assert method.lower() in paths[path], gap.key


# For each gap: an exchange that is right for the platform. The first kind breaks the file as
# shipped and passes once the gap is applied ("needed"); the second kind is a check the gap adds.
Exchange = tuple[str, ...]
NEEDED: dict[str, tuple[str, dict[str, Any]]] = {
    "header-names": ("request", {"method": "GET", "url": "/api/v1/profile", "headers": {"Api-Access-Token": "x"}}),
    "contact-create-request": (
        "request",
        {"method": "POST", "url": f"{A}/contacts", "body": _json({"name": "Alice"})},
    ),
    "contact-create-wrapped": (
        "response",
        {
            "method": "POST",
            "url": f"{A}/contacts",
            "status": 200,
            "body": _json({"payload": {"contact": p.contact(), "contact_inbox": None}}),
        },
    ),
    "contact-update-200": (
        "response",
        {"method": "PUT", "url": f"{A}/contacts/42", "status": 200, "body": _json({"payload": p.contact()})},
    ),
    "contact-sort-values": ("request", {"method": "GET", "url": f"{A}/contacts?sort=-created_at&page=1"}),
    "contact-filter-null-operator": (
        "request",
        {
            "method": "POST",
            "url": f"{A}/contacts/filter?page=1",
            "body": _json(
                {
                    "payload": [
                        {
                            "attribute_key": "name",
                            "filter_operator": "equal_to",
                            "values": ["A"],
                            "query_operator": None,
                        }
                    ]
                }
            ),
        },
    ),
    "slim-inbox-provider-null": (
        "response",
        {
            "method": "POST",
            "url": f"{A}/contacts/42/contact_inboxes",
            "status": 200,
            "body": _json({"source_id": "s", "inbox": p.slim_inbox()}),
        },
    ),
    "conversation-create-enums": (
        "request",
        {"method": "POST", "url": f"{A}/conversations", "body": _json({"source_id": "s", "status": "snoozed"})},
    ),
    "conversation-status-snoozed": (
        "response",
        {
            "method": "GET",
            "url": f"{A}/conversations/12",
            "status": 200,
            "body": _json(p.conversation(status="snoozed", snoozed_until="2026-07-01T09:00:00.000Z")),
        },
    ),
    "toggle-status-optional": (
        "request",
        {"method": "POST", "url": f"{A}/conversations/12/toggle_status", "body": _json({})},
    ),
    "message-create-enums": (
        "request",
        {
            "method": "POST",
            "url": f"{A}/conversations/12/messages",
            "body": _json({"content": "x", "message_type": "template", "content_type": "input_text"}),
        },
    ),
    "message-status-update": (
        "request",
        {"method": "PATCH", "url": f"{A}/conversations/12/messages/3", "body": _json({"status": "read"})},
    ),
    "error-bodies": (
        "response",
        {
            "method": "GET",
            "url": f"{A}/contacts/search?q=a",
            "status": 429,
            "body": b"Retry later\n",
            "content_type": "text/plain",
        },
    ),
}
TIGHTENS: dict[str, tuple[str, dict[str, Any]]] = {
    "contact-inbox-hmac-verified": (
        "request",
        {
            "method": "POST",
            "url": f"{A}/contacts/42/contact_inboxes",
            "body": _json({"inbox_id": 7, "hmac_verified": "yes"}),
        },
    ),
    "conversation-list-params": ("request", {"method": "GET", "url": f"{A}/conversations?updated_within=soon"}),
}
DOCUMENTARY = {"conversation-list-data-wrapper"}  # listed for readers; no edit, nothing to test


def _check(contract: Contract, kind: str, args: dict[str, Any]) -> None:
    args = dict(args)
    if kind == "request":
        headers = args.pop("headers", TOKEN_HEADER)
        body = args.pop("body", None)
        contract.validate_request(
            args["method"], args["url"], headers, body, "application/json" if body is not None else None
        )
    else:
        contract.validate_response(**args)


def test_every_gap_has_an_example() -> None:
    assert {gap.key for gap in KNOWN_SPEC_GAPS} == set(NEEDED) | set(TIGHTENS) | DOCUMENTARY


@pytest.mark.parametrize("key", sorted(NEEDED))
def test_gap_is_needed(key: str) -> None:
    kind, args = NEEDED[key]
    _check(Contract(), kind, args)  # right for the platform: passes with every gap applied
    without = Contract([gap for gap in KNOWN_SPEC_GAPS if gap.key != key])
    with pytest.raises(ContractViolation):
        _check(without, kind, args)  # and the file alone would reject it


@pytest.mark.parametrize("key", sorted(TIGHTENS))
def test_gap_adds_a_check(key: str) -> None:
    kind, args = TIGHTENS[key]
    with pytest.raises(ContractViolation):
        _check(Contract(), kind, args)
    _check(Contract([gap for gap in KNOWN_SPEC_GAPS if gap.key != key]), kind, args)


# -- requests -------------------------------------------------------------------------------------


def test_request_without_token_is_rejected() -> None:
    with pytest.raises(ContractViolation, match="Security"):
        validate_request("GET", "http://127.0.0.1:8000/api/v1/profile", {})


def test_unknown_path_is_rejected() -> None:
    with pytest.raises(ContractViolation, match="PathNotFound"):
        validate_request("GET", f"{A}/nothing", TOKEN_HEADER)


def test_host_and_prefix_are_ignored() -> None:
    validate_request("GET", "https://support.example.com/support/api/v1/profile", TOKEN_HEADER)


def test_bad_values_are_all_listed() -> None:
    with pytest.raises(ContractViolation) as info:
        validate_request("GET", f"{A}/conversations?status=closed&page=two", TOKEN_HEADER)
    assert "status" in str(info.value) and "page" in str(info.value)


def test_json_message_without_content_is_rejected() -> None:
    with pytest.raises(ContractViolation, match="'content' is a required property"):
        validate_request(
            "POST", f"{A}/conversations/12/messages", TOKEN_HEADER, _json({"private": True}), "application/json"
        )


def _multipart(data: list[tuple[str, str]], files: list[tuple[str, tuple[str, bytes, str]]]) -> tuple[str, dict, bytes]:
    prepared = requests.Request(
        "POST", f"http://h{A}/conversations/12/messages", headers=TOKEN_HEADER, data=data, files=files
    ).prepare()
    assert isinstance(prepared.body, bytes)
    return prepared.url or "", dict(prepared.headers), prepared.body


def test_multipart_message_is_validated_field_by_field() -> None:
    url, headers, body = _multipart(
        [("content", "hi"), ("private", "false"), ("content_attributes", '{"a": 1}')],
        [("attachments[]", ("a.png", b"\x89PNG", "image/png")), ("attachments[]", ("b.txt", b"x", "text/plain"))],
    )
    validate_request("POST", url, headers, body)

    url, headers, body = _multipart(
        [("content", "hi"), ("private", "maybe"), ("message_type", "activity"), ("attachments[]", "not-a-file")],
        [("avatar", ("a.png", b"\x89PNG", "image/png"))],
    )
    with pytest.raises(ContractViolation) as info:
        validate_request("POST", url, headers, body)
    problems = str(info.value)
    assert "private: 'maybe' is not of type 'boolean'" in problems
    assert "message_type: 'activity' is not one of" in problems
    assert "attachments[]: must be a file part" in problems
    assert "avatar: a file part the operation does not declare" in problems


def test_multipart_checks_the_token_too() -> None:
    url, headers, body = _multipart([("content", "hi")], [("attachments[]", ("a.png", b"1", "image/png"))])
    del headers["api_access_token"]
    with pytest.raises(ContractViolation, match="Security"):
        validate_request("POST", url, headers, body)


# -- responses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, p.INVALID_TOKEN),
        (401, p.DEVISE_SIGN_IN),
        (401, p.BOT_DENIED),
        (403, p.STATUS_ONLY_API),
        (404, p.NOT_FOUND),
        (422, p.RECORD_INVALID),
        (422, {"message": "Name is too long (maximum is 255 characters)"}),
        (422, p.PARAM_MISSING),
        (402, p.PAYMENT_REQUIRED),
    ],
)
def test_real_error_bodies_are_accepted_on_any_operation(status: int, body: dict) -> None:
    validate_response("POST", f"{A}/conversations/12/messages", status, _json(body))


def test_the_files_own_error_shape_is_rejected() -> None:
    with pytest.raises(ContractViolation):
        validate_response("GET", f"{A}/contacts/42", 404, _json({"description": "x", "errors": [{"field": "id"}]}))


def test_server_errors_may_be_html() -> None:
    validate_response("GET", f"{A}/contacts/42", 502, b"<html>Bad Gateway</html>", "text/html")


def test_unwrapped_contact_create_is_rejected() -> None:
    with pytest.raises(ContractViolation, match="'payload' is a required property"):
        validate_response("POST", f"{A}/contacts", 200, _json(p.contact()))


def test_message_type_must_be_an_int_in_api_responses() -> None:
    validate_response("POST", f"{A}/conversations/12/messages", 200, _json(p.message(5)))
    with pytest.raises(ContractViolation, match="message_type"):
        as_in_webhooks = p.message(5, message_type="incoming")  # type: ignore[arg-type]
        validate_response("POST", f"{A}/conversations/12/messages", 200, _json(as_in_webhooks))
