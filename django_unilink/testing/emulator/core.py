"""The :class:`Emulator`: start/stop, state snapshots, agent actions, faults and webhooks."""

from __future__ import annotations

import threading
from typing import Any

from . import errors, shapes
from .faults import RANDOM_KINDS, Fault, FaultPlan
from .server import EmulatorServer, LoggedRequest
from .state import Store
from .webhooks import WebhookDispatcher


class Emulator:
    """A local stand-in for a UniLink (Chatwoot) server: Application API, webhooks, agent console.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with Emulator(api_access_token="t") as emu:
            emu.add_inbox(7, webhook_url="http://127.0.0.1:8000/unilink/webhook/", secret="s")
            ...  # point UNILINK["BASE_URL"] at emu.url

    ``admin=False`` makes the token's user an agent: the inbox JSON hides ``secret`` and
    ``hmac_token``, and reopening a conversation assigns it to that agent (§1.3).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: int = 1,
        account_name: str = "Acme Support",
        api_access_token: str = "emulator-token",  # noqa: S107 - a fake token for a local emulator
        admin: bool = True,
        webhook_timeout: float = 5.0,
        flood_limit: int | None = 200,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self._store = Store(
            account_id=account_id, account_name=account_name, api_access_token=api_access_token, admin=admin
        )
        self._store.flood_limit = flood_limit
        self._webhooks = WebhookDispatcher(self._store, timeout=webhook_timeout)
        self._store.emit = self._webhooks.enqueue
        self._faults = FaultPlan()
        self._stopping = threading.Event()
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        #: ``(method, path, status)`` of every API request answered (see :class:`LoggedRequest`).
        self.requests_log: list[LoggedRequest] = []

    def __repr__(self) -> str:
        return f"<Emulator {self.url if self._server else 'stopped'} account={self._store.account_id}>"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Listen (``port=0`` picks a free port) and start the server and webhook threads."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = EmulatorServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._store.base_url = self.url
        self._webhooks.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="unilink-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled (delayed) requests are cut off, pending webhooks dropped."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        self._webhooks.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:40123`` (set ``UNILINK["BASE_URL"]`` to it)."""
        return f"http://{self.host}:{self.port}"

    @property
    def account_id(self) -> int:
        return self._store.account_id

    @property
    def api_access_token(self) -> str:
        return self._store.api_access_token

    @property
    def flood_limit(self) -> int | None:
        """Messages per conversation per minute before 422 "Too many messages"; ``None`` disables."""
        return self._store.flood_limit

    @flood_limit.setter
    def flood_limit(self, value: int | None) -> None:
        self._store.flood_limit = value

    @property
    def webhook_timeout(self) -> float:
        return self._webhooks.timeout

    @webhook_timeout.setter
    def webhook_timeout(self, value: float) -> None:
        self._webhooks.timeout = value

    def reset(self) -> None:
        """Forget contacts, conversations, messages, logs, deliveries and faults (inboxes stay)."""
        try:
            self.wait_for_webhooks()
        except TimeoutError:
            self._webhooks.clear()
        self._store.reset()
        self.requests_log.clear()
        self._webhooks.deliveries.clear()
        self.clear_faults()

    # -- inboxes ---------------------------------------------------------------------------------

    def add_inbox(
        self,
        inbox_id: int | None = None,
        *,
        name: str = "UniLink API",
        webhook_url: str | None = None,
        secret: str | None = None,
    ) -> dict[str, Any]:
        """Add an API-channel inbox; returns its admin JSON (with ``secret``, generated if None)."""
        inbox = self._store.add_inbox(inbox_id, name, webhook_url, secret)
        with self._store.lock:
            return _admin_inbox_json(self._store, inbox.id)

    def update_inbox(self, inbox_id: int, *, webhook_url: str | None = ..., secret: str | None = ...) -> dict[str, Any]:  # type: ignore[assignment]
        """Change an inbox's ``webhook_url`` and/or ``secret`` (``None`` removes the URL)."""
        with self._store.lock:
            inbox = self._store.inboxes[inbox_id]
            if webhook_url is not ...:
                inbox.webhook_url = webhook_url or None
            if secret is not ...:
                if not secret:
                    raise ValueError("an API channel always has a secret")
                inbox.secret = secret
            self._store.version += 1
            return _admin_inbox_json(self._store, inbox_id)

    def inboxes(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return [_admin_inbox_json(self._store, i) for i in self._store.inboxes]

    # -- state snapshots -------------------------------------------------------------------------

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact, as GET /contacts/{id} returns it (``payload`` unwrapped)."""
        with self._store.lock:
            return [shapes.contact_json(self._store, c) for c in self._store.contacts.values()]

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation (all statuses), as GET /conversations/{id} returns it, by display id."""
        with self._store.lock:
            return [shapes.conversation_api(self._store, c) for c in self._store.conversations.values()]

    def messages(self, conversation_id: int | None = None) -> list[dict[str, Any]]:
        """Messages (API shape, activity and private ones included) of one or all conversations, by id."""
        with self._store.lock:
            if conversation_id is None:
                rows = list(self._store.messages.values())
            else:
                rows = self._store.messages_of(self._conversation(conversation_id).display_id)
            return [shapes.message_api(self._store, m) for m in rows]

    def conversation_source_id(self, conversation_id: int) -> str:
        """The contact inbox ``source_id`` of a conversation (absent from the API object)."""
        with self._store.lock:
            c = self._conversation(conversation_id)
            return self._store.contact_inboxes[c.contact_inbox_id].source_id

    # -- agent side ------------------------------------------------------------------------------

    def _conversation(self, conversation_id: int) -> Any:
        try:
            return self._store.conversation(conversation_id)
        except errors.ApiError:
            raise LookupError(f"no conversation {conversation_id} in the emulator") from None

    def _call(self, action: Any) -> Any:
        try:
            return action()
        except errors.ApiError as exc:
            raise ValueError(exc.text) from None

    def agent_reply(self, conversation_id: int, content: str, *, private: bool = False) -> dict[str, Any]:
        """The agent answers (or adds a private note) in the dashboard; returns the message."""
        with self._store.lock:
            c = self._conversation(conversation_id)
            self._store.mark_seen_by_agent(c)
            m = self._call(lambda: self._store.create_message(c, {"content": content, "private": private}, []))
            return shapes.message_api(self._store, m)

    def contact_message(self, conversation_id: int, content: str) -> dict[str, Any]:
        """An incoming message written by the conversation's contact (e.g. through another client)."""
        with self._store.lock:
            c = self._conversation(conversation_id)
            m = self._call(lambda: self._store.create_message(c, {"content": content, "message_type": "incoming"}, []))
            return shapes.message_api(self._store, m)

    def set_status(self, conversation_id: int, status: str) -> dict[str, Any]:
        """The agent resolves/reopens/... the conversation; returns the conversation."""
        with self._store.lock:
            c = self._conversation(conversation_id)
            self._call(lambda: self._store.set_status(c, status))
            return shapes.conversation_api(self._store, c)

    def agent_typing(self, conversation_id: int, on: bool = True) -> None:
        """The agent starts (or stops) typing: conversation_typing_on/off."""
        with self._store.lock:
            self._store.typing(self._conversation(conversation_id), on)

    def delete_message(self, conversation_id: int, message_id: int) -> dict[str, Any]:
        """The agent deletes a message (soft delete, message_updated); returns it."""
        with self._store.lock:
            c = self._conversation(conversation_id)
            try:
                m = self._store.message(c, message_id)
            except errors.ApiError:
                raise LookupError(f"no message {message_id} in conversation {conversation_id}") from None
            self._store.delete_message(m)
            return shapes.message_api(self._store, m)

    # -- faults ----------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        body: Any = None,
        method: str | None = None,
        path: str | None = None,
        after_effect: bool = False,
    ) -> None:
        """Answer the next ``n`` matching API requests with ``status`` (429: text/plain "Retry later\\n").

        ``body``: a dict/list (JSON), a str (text/plain) or bytes; default: the platform's body
        for that status. ``path`` is a substring of the request path. ``after_effect=True``
        performs the request first (the message is stored!) and then answers the error.
        """
        self._faults.add(Fault("fail", status, body, after_effect=after_effect), n, method, path)

    def delay_next(
        self,
        n: int = 1,
        *,
        seconds: float,
        method: str | None = None,
        path: str | None = None,
        after_effect: bool = True,
    ) -> None:
        """Hold the next ``n`` matching API requests for ``seconds`` (past the client's read timeout).

        ``after_effect=True``: performed at once, answered late. ``after_effect=False``: never
        performed; after ``seconds`` the connection is reset.
        """
        self._faults.add(Fault("delay", seconds=seconds, after_effect=after_effect), n, method, path)

    def drop_next(
        self, n: int = 1, *, method: str | None = None, path: str | None = None, after_effect: bool = False
    ) -> None:
        """Reset the connection of the next ``n`` matching API requests without an answer."""
        self._faults.add(Fault("drop", after_effect=after_effect), n, method, path)

    def random_faults(
        self,
        rate: float,
        *,
        seed: int | None = None,
        kinds: tuple[str, ...] = RANDOM_KINDS,
        timeout_seconds: float = 2.0,
        after_effect_ratio: float = 0.5,
    ) -> None:
        """Fail a share ``rate`` of mutating API requests (POST/PUT/PATCH/DELETE); 0 disables.

        ``kinds``: ``"500"``, ``"429"``, ``"timeout"`` (held ``timeout_seconds``), ``"reset"``.
        A share ``after_effect_ratio`` of 500/timeout/reset faults happen after the request was
        performed; 429s never are (Rack::Attack answers before the app runs).
        """
        self._faults.set_random(rate, seed, tuple(kinds), timeout_seconds, after_effect_ratio)

    def clear_faults(self) -> None:
        """Drop queued faults and switch random faults off."""
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many explicitly queued faults have not been used yet."""
        return self._faults.pending

    # -- webhooks --------------------------------------------------------------------------------

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Attempted deliveries, oldest first: ``event``, ``url``, ``status`` (HTTP status or None),
        ``error`` (None on 2xx), ``delivery_id``, ``headers``, ``body`` (parsed) and ``raw`` (bytes)."""
        with self._webhooks._cond:
            return [dict(d) for d in self._webhooks.deliveries]

    def wait_for_webhooks(self, timeout: float = 5.0) -> None:
        """Block until the delivery queue is drained (raises ``TimeoutError`` after ``timeout`` s)."""
        self._webhooks.wait(timeout)


def _admin_inbox_json(store: Store, inbox_id: int) -> dict[str, Any]:
    data = shapes.inbox_json(store, store.inboxes[inbox_id])
    inbox = store.inboxes[inbox_id]
    data["hmac_token"] = inbox.hmac_token
    data["secret"] = inbox.secret
    return data
