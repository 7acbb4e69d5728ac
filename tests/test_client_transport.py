"""Transport failures of UnilinkClient against misbehaving loopback sockets (no mocking)."""

from __future__ import annotations

import logging
import socket
import traceback

import pytest

from django_unilink import exceptions
from django_unilink.client import UnilinkClient
from tests.client_payloads import TOKEN
from tests.client_support import RawServer, free_port

A = "/api/v1/accounts/1"


def client_for(url: str, *, connect_timeout: float = 2, read_timeout: float = 0.3) -> UnilinkClient:
    return UnilinkClient(url, 1, TOKEN, connect_timeout=connect_timeout, read_timeout=read_timeout)


def assert_no_token(err: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    text = str(err) + repr(err) + "".join(traceback.format_exception(err)) + caplog.text
    assert TOKEN not in text


def test_token_header_name_on_the_wire() -> None:
    """The raw request carries the documented header name, with the underscores."""
    with RawServer("ok") as server, client_for(server.url) as client:
        client.get_profile()
    (raw,) = server.raw_requests
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert f"api_access_token: {TOKEN}".encode() in head
    assert head[0] == b"GET /api/v1/profile HTTP/1.1"


def test_a_token_with_a_line_break_never_reaches_the_error(caplog: pytest.LogCaptureFixture) -> None:
    """requests refuses the header and quotes its value; the error must not carry the token."""
    caplog.set_level(logging.DEBUG)
    with UnilinkClient(f"http://127.0.0.1:{free_port()}", 1, TOKEN + "\n") as client:
        with pytest.raises(exceptions.TransportError) as info:
            client.create_message(12, content="hello")
    assert "header" in str(info.value)
    assert_no_token(info.value, caplog)


def test_connection_refused_is_a_transport_error_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client_for(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(exceptions.TransportError) as info:
            client.create_message(12, content="hello")
    err = info.value
    assert type(err) is exceptions.TransportError
    assert (err.sent, err.status, err.method, err.retryable) == (False, None, "POST", True)
    assert "could not connect" in str(err) and "the request was not sent" in str(err)
    assert f"POST {A}/conversations/12/messages" in str(err)
    assert_no_token(err, caplog)


def test_read_timeout_after_sending_a_post_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with RawServer("hang") as server, client_for(server.url) as client:
        with pytest.raises(exceptions.TimeoutError) as info:
            client.create_message(12, content="hello", source_id="ours-1")
    assert server.connections == 1  # outcome unknown: a blind retry could post twice
    assert info.value.sent is True
    assert b'"source_id": "ours-1"' in server.raw_requests[0]
    assert_no_token(info.value, caplog)


def test_read_timeout_on_get_is_retried_twice() -> None:
    with RawServer("hang") as server, client_for(server.url) as client:
        with pytest.raises(exceptions.TimeoutError) as info:
            client.get_conversation(12)
    assert server.connections == 3  # one try and two transport retries: GET is safe to repeat
    assert info.value.sent is True


@pytest.mark.parametrize("behaviour", ["reset", "close"])
def test_connection_dropped_after_a_post_was_sent(behaviour: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with RawServer(behaviour) as server, client_for(server.url) as client:  # type: ignore[arg-type]
        with pytest.raises(exceptions.TransportError) as info:
            client.update_message_status(12, 300, "delivered")
    err = info.value
    assert type(err) is exceptions.TransportError
    assert server.connections == 1
    assert err.sent is True
    assert "the request may have been processed" in str(err)
    assert f"PATCH {A}/conversations/12/messages/300" in str(err)
    assert_no_token(err, caplog)


def test_connection_reset_on_get_is_retried_then_raised() -> None:
    with RawServer("reset") as server, client_for(server.url) as client:
        with pytest.raises(exceptions.TransportError) as info:
            client.get_inbox(7)
    assert server.connections == 3
    assert info.value.sent is True


def test_connect_timeout_is_a_timeout_not_sent() -> None:
    """A listener whose accept queue is full drops SYNs, so connecting times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue (never accepted)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        with client_for(f"http://127.0.0.1:{port}", connect_timeout=0.2) as client:
            with pytest.raises(exceptions.TransportError) as info:
                client.create_message(12, content="hello")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    err = info.value
    assert type(err) is exceptions.TimeoutError
    assert err.sent is False
    assert "could not connect within 0.2 s" in str(err)
