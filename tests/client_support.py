"""Loopback servers for the client tests.

- :class:`RackLikeHTTPServer`: pytest-httpserver whose werkzeug server keeps header names with
  underscores, as the platform's Puma/Rack does (werkzeug, like nginx by default, drops them, and
  the platform's token header is ``api_access_token``). Import ``make_httpserver`` into a test
  module to make its ``httpserver`` fixture use it.
- :class:`RawServer`: a bare TCP server that misbehaves on purpose (hangs, resets, closes) and
  counts connections, for transport-error tests.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Literal

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request


class RackLikeRequestHandler(WSGIRequestHandler):
    """Maps ``api_access_token: x`` to ``HTTP_API_ACCESS_TOKEN`` as Rack does."""

    def make_environ(self):  # type: ignore[no-untyped-def]
        environ = super().make_environ()
        for key, value in self.headers.items():
            if "_" in key:
                environ.setdefault("HTTP_" + key.upper().replace("-", "_"), value)
        return environ


class RackLikeHTTPServer(HTTPServer):
    def start(self) -> None:
        app = Request.application(self.application)  # type: ignore[arg-type]
        self.server = make_server(
            self.host, self.port, app, ssl_context=self.ssl_context, request_handler=RackLikeRequestHandler
        )
        self.port = self.server.port
        self.server_thread = threading.Thread(target=self.thread_target, daemon=True)
        self.server_thread.start()


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    server = RackLikeHTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


Behaviour = Literal["hang", "reset", "close", "ok"]


class RawServer:
    """Accepts connections on 127.0.0.1, reads one request, then misbehaves as told.

    ``hang``: never answers (until stopped); ``reset``: closes with a TCP RST; ``close``: closes
    cleanly without a response; ``ok``: answers ``200 {}``. ``raw_requests`` keeps the bytes received.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.raw_requests: list[bytes] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self._accept.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self.sock.close()
        for thread in [self._accept, *self._threads]:
            thread.join(5)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # timeout, or closed by __exit__
                continue
            self.connections += 1
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _read_request(self, conn: socket.socket) -> bytes:
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            self.raw_requests.append(self._read_request(conn))
            if self.behaviour == "hang":
                self._stop.wait(10)
            elif self.behaviour == "reset":
                # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.behaviour == "ok":
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                    b"Connection: close\r\n\r\n{}"
                )


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
