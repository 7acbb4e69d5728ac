"""The HTTP side: a ``ThreadingHTTPServer`` whose handler parses requests, applies injected
faults, and hands API calls to :mod:`.api` and console calls to :mod:`.console`."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from . import api, console, errors, shapes
from .faults import Fault

if TYPE_CHECKING:
    from . import Emulator


class LoggedRequest(tuple):  # noqa: SLOT001 - extra attributes live in __dict__
    """One line of ``Emulator.requests_log``: a ``(method, path, status)`` tuple.

    ``status`` is ``0`` when no answer was sent (reset). Extra attributes: ``query`` (the raw
    query string) and ``fault`` (``None``, the injected status as a string, ``"timeout"`` or
    ``"reset"``).
    """

    query: str
    fault: str | None

    def __new__(
        cls, method: str, path: str, status: int, *, query: str = "", fault: str | None = None
    ) -> LoggedRequest:
        entry = super().__new__(cls, (method, path, status))
        entry.query = query
        entry.fault = fault
        return entry

    @property
    def method(self) -> str:
        return str(self[0])

    @property
    def path(self) -> str:
        return str(self[1])

    @property
    def status(self) -> int:
        return int(self[2])


_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def assign_param(params: dict[str, Any], key: str, value: Any) -> None:
    """Store ``value`` under a Rails-style key: ``a``, ``a[]``, ``a[b]``, ``a[b][]``."""
    match = _KEY_RE.match(key)
    if not match:
        params[key] = value
        return
    parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
    target: dict[str, Any] = params
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        following = None if last else parts[index + 1]
        if following == "":  # `part[]`: a list, and the end of the key
            existing = target.get(part)
            if not isinstance(existing, list):
                existing = target[part] = []
            existing.append(value)
            return
        if last:
            target[part] = value
            return
        nested = target.get(part)
        if not isinstance(nested, dict):
            nested = target[part] = {}
        target = nested


def parse_body(content_type: str, body: bytes, params: dict[str, Any], files: list[tuple[str, str, bytes]]) -> None:
    """Merge the body into ``params`` (JSON, form or multipart); files of ``attachments[]`` go to ``files``."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return
    if kind == "application/json" or (not kind and body[:1] in (b"{", b"[")):
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise errors.ApiError(400, {"status": 400, "error": "Bad Request"})
        if isinstance(data, dict):
            params.update(data)
        else:
            params["_json"] = data  # Rails' wrap for a non-object JSON body
    elif kind == "application/x-www-form-urlencoded":
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            assign_param(params, key, value)
    elif kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise errors.ApiError(400, {"status": 400, "error": "Bad Request"})
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str) or not name:
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                payload = b""
            filename = part.get_filename()
            if filename is not None:
                if name == "attachments[]" or name.startswith("attachments["):
                    files.append((filename, part.get_content_type(), payload))
                continue
            charset = part.get_content_charset() or "utf-8"
            assign_param(params, str(name), payload.decode(charset, "replace"))


_DEFAULT_ERRORS = {
    401: "You are not authorized to do this action",
    404: "Resource could not be found",
}


def fault_response(fault: Fault) -> tuple[int, bytes, str]:
    """Status, body and content type of an injected failure."""
    if fault.body is not None:
        if isinstance(fault.body, bytes):
            return fault.status, fault.body, "application/octet-stream"
        if isinstance(fault.body, str):
            return fault.status, fault.body.encode("utf-8"), "text/plain; charset=utf-8"
        return fault.status, shapes.dumps(fault.body), "application/json; charset=utf-8"
    if fault.status == 429:
        # Rack::Attack's throttled response: text/plain "Retry later\n", no Retry-After (§4.1).
        return 429, b"Retry later\n", "text/plain"
    if fault.status >= 500:
        body = {"status": fault.status, "error": errors.reason(fault.status)}
        return fault.status, shapes.dumps(body), "application/json; charset=utf-8"
    # Other statuses: the body the platform uses for them (§4.2), else the reason phrase.
    message = _DEFAULT_ERRORS.get(fault.status, errors.reason(fault.status))
    return fault.status, shapes.dumps({"error": message}), "application/json; charset=utf-8"


class EmulatorServer(ThreadingHTTPServer):
    """The listening server; ``emulator`` gives handlers the state."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Cut open keep-alive connections, so a stopped emulator answers nothing at all."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 with keep-alive, like the platform behind a proxy."""

    protocol_version = "HTTP/1.1"
    server: EmulatorServer
    server_version = "UniLinkEmulator"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)
        # Answers are written as headers + body; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    # -- plumbing --------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_body(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # end_headers() by hand so headers and body leave in one write
        buffer: list[bytes] = self._headers_buffer  # type: ignore[attr-defined]
        buffer.append(b"\r\n")
        if self.command != "HEAD":
            buffer.append(body)
        self.flush_headers()

    def send_json(self, status: int, value: Any) -> None:
        body = b"" if value is None else shapes.dumps(value)
        self.send_body(status, body, "application/json; charset=utf-8")

    def reset(self) -> None:
        """Close the socket with a TCP reset and no answer (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    # -- dispatch --------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        path = parts.path
        body = self._read_body()
        if path.startswith("/api/"):
            self._api(path, parts.query, body)
            return
        try:
            console.handle(emulator, self, path, parts.query, body)
        except errors.ApiError as exc:
            self.send_json(exc.status, exc.body)

    def _api(self, path: str, query: str, body: bytes) -> None:
        emulator = self.server.emulator
        method = self.command
        fault = emulator._faults.take(method, path)
        label = fault.label if fault else None

        def log(status: int) -> None:
            emulator.requests_log.append(LoggedRequest(method, path, status, query=query, fault=label))

        if fault is not None and not fault.after_effect:
            if fault.kind == "fail":
                status, payload, content_type = fault_response(fault)
                log(status)  # logged before answering, so a client that reads the log next sees it
                self.send_body(status, payload, content_type)
            elif fault.kind == "drop":
                log(0)
                self.reset()
            else:  # a request that stalls and is never processed
                log(0)  # logged at once, so tests see it while the client still waits
                emulator._stopping.wait(fault.seconds)
                self.reset()
            return

        status, result = self._perform(method, path, query, body)
        if fault is None:
            log(status)
            self.send_json(status, result)
        elif fault.kind == "fail":  # done, then the error: an unknown outcome for the client
            status, payload, content_type = fault_response(fault)
            log(status)
            self.send_body(status, payload, content_type)
        elif fault.kind == "drop":
            log(0)
            self.reset()
        else:  # done, but answered late (past the client's read timeout)
            log(status)  # logged at once: the change is already made
            emulator._stopping.wait(fault.seconds)
            try:
                self.send_json(status, result)
            except OSError:
                pass  # the client gave up and closed the connection

    def _perform(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        emulator = self.server.emulator
        params: dict[str, Any] = {}
        files: list[tuple[str, str, bytes]] = []
        try:
            for key, value in parse_qsl(query, keep_blank_values=True):
                assign_param(params, key, value)
            query_params = dict(params)
            parse_body(self.headers.get("Content-Type") or "", body, params, files)
            request = api.ApiRequest(method, path, self.headers, params, files, query_params)  # type: ignore[arg-type]
            return api.handle(emulator._store, request)
        except errors.ApiError as exc:
            return exc.status, exc.body
