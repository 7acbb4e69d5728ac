"""The emulator's agent console (``/``) and its command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from django_unilink.testing.emulator import Emulator

TOKEN = "emulator-test-token"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_access_token=TOKEN) as emulator:
        emulator.add_inbox(7, name="Support <API>")
        yield emulator


def _conversation(emu: Emulator, name: str = "Jane <script>alert(1)</script>") -> int:
    session = requests.Session()
    session.headers["api_access_token"] = TOKEN
    base = f"{emu.url}/api/v1/accounts/1"
    contact = session.post(f"{base}/contacts", json={"name": name, "inbox_id": 7}, timeout=5).json()["payload"]
    conversation = session.post(
        f"{base}/conversations",
        json={
            "source_id": contact["contact_inbox"]["source_id"],
            "message": {"content": "I <3 your & product", "message_type": "incoming"},
        },
        timeout=5,
    ).json()
    return int(conversation["id"])


def test_page_lists_conversations_escaped(emu: Emulator) -> None:
    cid = _conversation(emu)
    emu.agent_reply(cid, "a <b>private</b> note", private=True)
    page = requests.get(f"{emu.url}/", timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert f'id="conversation-{cid}"' in html
    assert "Jane &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert "I &lt;3 your &amp; product" in html
    assert "Support &lt;API&gt;" in html
    assert 'class="message outgoing private"' in html and "Private note" in html
    assert 'class="message incoming"' in html
    assert f'action="/console/conversations/{cid}/reply"' in html
    assert 'name="private"' in html and ">Resolve<" in html


def test_empty_console(emu: Emulator) -> None:
    assert "No conversations yet." in requests.get(f"{emu.url}/", timeout=5).text


def test_reply_form_posts_as_agent(emu: Emulator) -> None:
    cid = _conversation(emu)
    response = requests.post(
        f"{emu.url}/console/conversations/{cid}/reply",
        data={"content": "Hello\r\nthere"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/#conversation-{cid}"
    note = requests.post(
        f"{emu.url}/console/conversations/{cid}/reply", data={"content": "psst", "private": "1"}, timeout=5
    )
    assert note.status_code == 200  # followed the redirect to the page
    reply, private = emu.messages(cid)[-2:]
    assert (reply["content"], reply["message_type"], reply["private"]) == ("Hello\nthere", 1, False)
    assert (private["content"], private["private"]) == ("psst", True)
    empty = requests.post(f"{emu.url}/console/conversations/{cid}/reply", data={"content": "  "}, timeout=5)
    assert empty.status_code == 422
    missing = requests.post(f"{emu.url}/console/conversations/999/reply", data={"content": "x"}, timeout=5)
    assert missing.status_code == 404


def test_status_buttons_and_delete(emu: Emulator) -> None:
    cid = _conversation(emu)
    url = f"{emu.url}/console/conversations/{cid}"
    assert (
        requests.post(f"{url}/status", data={"status": "resolved"}, allow_redirects=False, timeout=5).status_code == 303
    )
    assert emu.conversations()[0]["status"] == "resolved"
    assert ">Reopen<" in requests.get(f"{emu.url}/", timeout=5).text
    requests.post(f"{url}/status", data={"status": "open"}, timeout=5)
    assert emu.conversations()[0]["status"] == "open"
    assert requests.post(f"{url}/status", data={"status": "bogus"}, timeout=5).status_code == 422
    first = emu.messages(cid)[0]
    requests.post(f"{url}/messages/{first['id']}/delete", timeout=5)
    assert emu.messages(cid)[0]["content"] == "This message was deleted"
    assert requests.post(f"{url}/typing", data={"typing_status": "on"}, timeout=5).status_code == 204


def test_state_and_version_endpoints(emu: Emulator) -> None:
    before = requests.get(f"{emu.url}/console/version", timeout=5).json()["version"]
    cid = _conversation(emu)
    after = requests.get(f"{emu.url}/console/version", timeout=5).json()["version"]
    assert after > before
    state = requests.get(f"{emu.url}/console/state.json", timeout=5).json()
    assert state["account"] == {"id": 1, "name": "Acme Support"}
    assert [c["id"] for c in state["conversations"]] == [cid]
    assert state["messages"][0]["content"] == "I <3 your & product"


def test_unknown_console_path_is_404(emu: Emulator) -> None:
    assert requests.get(f"{emu.url}/nope", timeout=5).status_code == 404


def test_cli_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "django_unilink.testing.emulator", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    for option in ("--port", "--token", "--account-id", "--inbox-id", "--webhook-url", "--secret"):
        assert option in result.stdout


def test_cli_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_unilink.testing.emulator",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--account-id",
            "3",
            "--inbox-id",
            "9",
            "--secret",
            "cli-secret-value",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("UniLink emulator listening on http://127.0.0.1:")
        url = first.split()[-1]
        inbox = requests.get(f"{url}/api/v1/accounts/3/inboxes/9", headers={"api_access_token": "cli-token"}, timeout=5)
        assert inbox.status_code == 200 and inbox.json()["secret"] == "cli-secret-value"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        output = process.stdout.read()
        assert "cli-secret-value" not in first + output  # a given secret is never printed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
