"""The emulator's answers validated against the platform's OpenAPI file.

``django_unilink.testing.contract`` holds the file plus the documented gaps where the platform's
code differs from it (``KNOWN_SPEC_GAPS``, each citing unilink-api.md); nothing else is excused.
Every request and response of a session covering each emulated endpoint, successes and errors, is
checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

pytest.importorskip("openapi_core")

from django_unilink.testing.contract import validate_request, validate_response  # noqa: E402
from django_unilink.testing.emulator import Emulator  # noqa: E402

TOKEN = "emulator-contract-token"


class RecordingSession(requests.Session):
    """A session that keeps every prepared request with its response."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[requests.PreparedRequest, requests.Response]] = []
        #: Indexes of requests sent invalid on purpose (to see the emulator's error answer).
        self.invalid: set[int] = set()

    def last_was_invalid(self) -> None:
        self.invalid.add(len(self.exchanges) - 1)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().send(request, **kwargs)
        self.exchanges.append((request, response))
        return response


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_access_token=TOKEN) as emulator:
        emulator.add_inbox(7)
        yield emulator


def _exercise(emu: Emulator) -> RecordingSession:
    s = RecordingSession()
    s.headers["api_access_token"] = TOKEN
    a = f"{emu.url}/api/v1/accounts/1"

    s.get(f"{emu.url}/api/v1/profile")
    s.get(f"{a}/inboxes/7")
    created = s.post(
        f"{a}/contacts",
        json={
            "name": "Jane",
            "email": "jane@example.com",
            "phone_number": "+15555550123",
            "identifier": "u-1",
            "inbox_id": 7,
            "source_id": "src-1",
            "custom_attributes": {"plan": "pro"},
        },
    ).json()["payload"]
    contact_id = created["contact"]["id"]
    s.post(f"{a}/contacts", json={"name": "Dup", "email": "jane@example.com"})  # 422 record invalid
    s.get(f"{a}/contacts/{contact_id}")
    s.put(f"{a}/contacts/{contact_id}", json={"custom_attributes": {"seen": True}})
    s.get(f"{a}/contacts", params={"page": "1", "sort": "-name"})
    s.get(f"{a}/contacts/search", params={"q": "jane", "page": "1"})
    s.get(f"{a}/contacts/search")  # 422
    s.post(
        f"{a}/contacts/filter",
        params={"page": 1},
        json={
            "payload": [
                {
                    "attribute_key": "email",
                    "filter_operator": "equal_to",
                    "values": ["jane@example.com"],
                    "query_operator": None,
                }
            ]
        },
    )
    s.post(f"{a}/contacts/{contact_id}/contact_inboxes", json={"inbox_id": 7, "source_id": "src-2"})
    s.get(f"{a}/contacts/{contact_id}/conversations")
    conversation = s.post(
        f"{a}/conversations",
        json={
            "source_id": "src-1",
            "inbox_id": 7,
            "contact_id": contact_id,
            "custom_attributes": {"t": "1"},
            "message": {"content": "Hello", "message_type": "incoming"},
        },
    ).json()
    cid = conversation["id"]
    s.post(f"{a}/conversations", json={"source_id": "unknown"})  # 404
    s.get(f"{a}/conversations/{cid}")
    s.get(f"{a}/conversations", params={"status": "all", "page": "1"})
    s.get(f"{a}/conversations/meta")
    incoming = s.post(
        f"{a}/conversations/{cid}/messages",
        json={"content": "More", "message_type": "incoming", "private": False, "source_id": "m-1", "echo_id": "e-1"},
    ).json()
    s.post(
        f"{a}/conversations/{cid}/messages",
        data={"content": "A file", "message_type": "incoming"},
        files=[("attachments[]", ("a.png", b"\x89PNG", "image/png"))],
    )
    s.post(f"{a}/conversations/{cid}/messages", json={"content": "note", "private": True})
    s.post(f"{a}/conversations/{cid}/messages", json={"content": "x", "message_type": "bogus"})  # 422
    s.last_was_invalid()
    s.get(f"{a}/conversations/{cid}/messages")
    s.get(f"{a}/conversations/{cid}/messages", params={"after": incoming["id"] - 1})
    s.patch(f"{a}/conversations/{cid}/messages/{incoming['id']}", json={"status": "failed", "external_error": "boom"})
    s.post(f"{a}/conversations/{cid}/toggle_status", json={"status": "resolved"})
    s.post(f"{a}/conversations/{cid}/toggle_status", json={})  # toggles back to open
    s.post(f"{a}/conversations/{cid}/custom_attributes", json={"custom_attributes": {"t": "2"}})
    s.post(f"{a}/conversations/{cid}/assignments", json={"assignee_id": 1})
    s.delete(f"{a}/conversations/{cid}/messages/{incoming['id']}")
    s.get(f"{a}/conversations/999")  # 404
    s.get(f"{a}/contacts", headers={"api_access_token": "wrong"})  # 401
    return s


def test_every_exchange_matches_the_contract(emu: Emulator) -> None:
    session = _exercise(emu)
    assert len(session.exchanges) >= 30
    problems = []
    for index, (request, response) in enumerate(session.exchanges):
        content_type = response.headers.get("Content-Type", "application/json").split(";")[0]
        body = request.body.encode() if isinstance(request.body, str) else request.body
        try:
            if index in session.invalid:
                with pytest.raises(AssertionError):
                    validate_request(request.method or "", request.url or "", dict(request.headers), body)
            else:
                validate_request(request.method or "", request.url or "", dict(request.headers), body)
            if response.content:
                validate_response(
                    request.method or "", request.url or "", response.status_code, response.content, content_type
                )
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n\n".join(problems)
