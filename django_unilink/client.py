"""A thin, typed HTTP client of the UniLink Application API (the Chatwoot API).

It has no Django ORM imports and can be used alone::

    with UnilinkClient("https://support.example.com", 1, token) as client:
        created = client.create_contact(inbox_id=7, name="Alice", identifier="user-42")

What it does and does not do:

- One ``requests.Session`` per client (connection reuse), an explicit ``(connect, read)`` timeout
  on every call, the ``api_access_token`` header sent with each request (never stored on the
  session, so a session shared by clients of several tokens cannot mix them up).
- The platform's wrappers are removed (``payload``, ``data.payload``); objects are returned as
  plain dicts exactly as the platform sends them (ids, ints and timestamps untouched).
- Errors are the classes of :mod:`django_unilink.exceptions`; their messages carry the method,
  path, status and a short body excerpt, never the token.
- Transport retries are deliberately small (see :func:`default_retry`): connection failures (the
  request never left) are retried for every method, other failures only for ``GET``. A ``POST``
  or ``PATCH`` whose outcome is unknown is never retried here: the Celery layer decides, because
  only it knows the idempotency key (``source_id``) to reconcile with.

A client is not meant to be shared between threads; make one per thread or task.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from . import __version__, encoding
from .exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)
from .exceptions import TimeoutError as UnilinkTimeoutError

if TYPE_CHECKING:
    from .conf import InboxConfig

logger = logging.getLogger("django_unilink.client")

#: The User-Agent sent when none is configured.
DEFAULT_USER_AGENT = f"django-unilink/{__version__}"

#: Message list pages: ``after=<id>`` returns up to this many messages (MessageFinder).
MESSAGES_AFTER_PAGE_SIZE = 100
#: Most attachments the platform accepts on one message (``Message::NUMBER_OF_PERMITTED_ATTACHMENTS``).
MAX_ATTACHMENTS = 15
#: Longest message content the platform accepts.
MAX_CONTENT_LENGTH = 150_000

MESSAGE_TYPES = ("outgoing", "incoming", "template")
MESSAGE_STATUSES = encoding.MESSAGE_STATUSES
CONVERSATION_STATUSES = encoding.CONVERSATION_STATUSES
CONTACT_FIELDS = (
    "name",
    "identifier",
    "email",
    "phone_number",
    "blocked",
    "avatar_url",
    "custom_attributes",
    "additional_attributes",
)

#: How many characters of a response body an error message quotes.
EXCERPT_LENGTH = 300

#: One attachment: ``(filename, data, mime type)``; data is bytes or a binary file object.
Attachment = tuple[str, "bytes | IO[bytes]", str]


def default_retry() -> Retry:
    """The urllib3 retry policy mounted on sessions the client creates.

    - Connection failures (refused, DNS, connect timeout) are retried for every method: the
      request never reached the platform, so a retry cannot duplicate anything.
    - Read errors (reset, read timeout) are retried only for ``GET``, which is safe to repeat.
    - HTTP statuses (429, 5xx) are never retried here; they raise at once and the caller
      (the Celery tasks, with their backoff) decides.
    """
    return Retry(
        total=2,
        connect=2,
        read=2,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=(),
        backoff_factor=0.2,
        raise_on_status=False,
        respect_retry_after_header=False,
    )


class UnilinkClient:
    """Client of one account of a UniLink installation, authenticated by one access token.

    ``base_url`` is the site root (``https://support.example.com``); the client adds
    ``/api/v1/...``. Use a *User* token (an administrator's is best): agent-bot tokens may call
    only a handful of endpoints.
    """

    def __init__(
        self,
        base_url: str,
        account_id: int,
        api_access_token: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        user_agent: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(str(base_url or ""))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError(
                f"base_url must be an absolute http(s) URL such as 'https://support.example.com', "
                f"not {_strip_userinfo(str(base_url))!r}."
            )
        if not api_access_token:
            raise InvalidInputError("api_access_token is empty: pass the access token of a UniLink user.")
        self.base_url = str(base_url).rstrip("/")
        self.account_id = _positive_int(account_id, "account_id")
        self.__token = str(api_access_token)
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.user_agent = user_agent or DEFAULT_USER_AGENT
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=default_retry())
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session

    @classmethod
    def from_config(cls, config: InboxConfig) -> UnilinkClient:
        """A client for one configured inbox; timeouts and User-Agent are read from settings now.

        Raises :class:`ConfigurationError` naming the setting to fix when the inbox is unusable.
        """
        from .conf import as_int, get_setting, validate_inbox

        problems = validate_inbox(config)
        if problems:
            raise ConfigurationError(" ".join(f"{message} {hint}" for _, message, hint in problems))
        return cls(
            config.api_base,
            as_int(config.account_id),
            config.api_access_token,
            connect_timeout=float(get_setting("CONNECT_TIMEOUT")),
            read_timeout=float(get_setting("READ_TIMEOUT")),
            user_agent=get_setting("USER_AGENT"),
        )

    def __repr__(self) -> str:
        return f"<UnilinkClient {_strip_userinfo(self.base_url)} account={self.account_id} api_access_token='***'>"

    def close(self) -> None:
        """Close the session (only when this client created it)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> UnilinkClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- contacts ---------------------------------------------------------------------------

    def create_contact(
        self,
        *,
        inbox_id: int | None = None,
        source_id: str | None = None,
        name: str | None = None,
        identifier: str | None = None,
        email: str | None = None,
        phone_number: str | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a contact, and with ``inbox_id`` its contact inbox (session) on that inbox.

        Returns ``{"contact": {...}, "contact_inbox": {"source_id": ..., "inbox": {...}} | None}``.
        Without ``source_id`` the platform generates a uuid for API inboxes.
        """
        if source_id is not None and inbox_id is None:
            raise InvalidInputError("create_contact(source_id=...) needs inbox_id: a source_id belongs to an inbox.")
        body = _compact(
            inbox_id=_positive_int(inbox_id, "inbox_id") if inbox_id is not None else None,
            source_id=source_id,
            name=name,
            identifier=identifier,
            email=email,
            phone_number=phone_number,
            custom_attributes=_mapping(custom_attributes, "custom_attributes"),
            additional_attributes=_mapping(additional_attributes, "additional_attributes"),
        )
        data = self._request("POST", self._account_path("contacts"), json_body=body)
        payload = _unwrap(data, "payload")
        if isinstance(payload, dict) and "contact" in payload:
            return {"contact": payload["contact"], "contact_inbox": payload.get("contact_inbox")}
        # Tolerate the unwrapped shape the swagger file describes (and older installations).
        return {"contact": payload, "contact_inbox": None}

    def get_contact(self, contact_id: int) -> dict[str, Any]:
        """The contact object (with its ``contact_inboxes``)."""
        path = self._account_path("contacts", _positive_int(contact_id, "contact_id"))
        return _as_dict(_unwrap(self._request("GET", path), "payload"))

    def update_contact(self, contact_id: int, **fields: Any) -> dict[str, Any]:
        """Update a contact; custom/additional attributes are *merged* by the platform, not replaced."""
        unknown = sorted(set(fields) - set(CONTACT_FIELDS))
        if unknown:
            raise InvalidInputError(
                f"update_contact() got unknown field(s) {', '.join(unknown)}; allowed: {', '.join(CONTACT_FIELDS)}."
            )
        if not fields:
            raise InvalidInputError("update_contact() needs at least one field to change.")
        path = self._account_path("contacts", _positive_int(contact_id, "contact_id"))
        return _as_dict(_unwrap(self._request("PUT", path, json_body=dict(fields)), "payload"))

    def search_contacts(self, q: str) -> Iterator[dict[str, Any]]:
        """Contacts whose name, email, phone number or identifier contain ``q``, all pages.

        The platform limits search to 100 requests a minute per account.
        """
        if not q:
            raise InvalidInputError("search_contacts() needs a non-empty search string q.")
        path = self._account_path("contacts", "search")
        page = 1
        while True:
            data = _as_dict(self._request("GET", path, params={"q": q, "page": page}))
            items = _list(data.get("payload"))
            yield from items
            meta = data.get("meta") or {}
            if not items or not meta.get("has_more"):
                return
            page += 1

    def filter_contacts(self, payload: Sequence[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        """Contacts matching filter conditions (``attribute_key``, ``filter_operator``, ``values``,
        ``query_operator``), all pages."""
        if not payload:
            raise InvalidInputError("filter_contacts() needs at least one filter condition.")
        path = self._account_path("contacts", "filter")
        body = {"payload": [dict(condition) for condition in payload]}
        yield from self._pages("POST", path, {}, json_body=body)

    def list_contacts(self, *, sort: str | None = None) -> Iterator[dict[str, Any]]:
        """Every listed contact (the platform lists only contacts with an email, phone or
        identifier), 15 a page, until an empty page."""
        params: dict[str, Any] = {} if sort is None else {"sort": sort}
        yield from self._pages("GET", self._account_path("contacts"), params)

    def create_contact_inbox(
        self,
        contact_id: int,
        *,
        inbox_id: int,
        source_id: str | None = None,
        hmac_verified: bool | None = None,
    ) -> dict[str, Any]:
        """Find or create the contact's session on an inbox; returns ``{"source_id", "inbox"}``."""
        path = self._account_path("contacts", _positive_int(contact_id, "contact_id"), "contact_inboxes")
        body = _compact(inbox_id=_positive_int(inbox_id, "inbox_id"), source_id=source_id, hmac_verified=hmac_verified)
        return _as_dict(self._request("POST", path, json_body=body))

    # -- conversations ----------------------------------------------------------------------

    def create_conversation(
        self,
        *,
        source_id: str,
        inbox_id: int,
        contact_id: int | None = None,
        status: str | None = None,
        assignee_id: int | None = None,
        team_id: int | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        message: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a conversation on the contact inbox ``source_id``; returns the bare conversation.

        Its ``id`` is the per-account display id used in every other conversation path.
        ``message`` is an optional first message (``{"content": ..., "message_type": "incoming"}``
        for one written by the contact; the platform defaults to ``outgoing``).
        """
        if not source_id:
            raise InvalidInputError("create_conversation() needs the contact inbox's source_id.")
        if status is not None and status not in CONVERSATION_STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(CONVERSATION_STATUSES)}, not {status!r}.")
        if message is not None:
            message = dict(message)
            kind = message.get("message_type")
            if kind is not None and kind not in MESSAGE_TYPES:
                raise InvalidInputError(
                    f"message['message_type'] must be one of {', '.join(MESSAGE_TYPES)}, not {kind!r}."
                )
        body = _compact(
            source_id=source_id,
            inbox_id=_positive_int(inbox_id, "inbox_id"),
            contact_id=_positive_int(contact_id, "contact_id") if contact_id is not None else None,
            status=status,
            assignee_id=assignee_id,
            team_id=team_id,
            custom_attributes=_mapping(custom_attributes, "custom_attributes"),
            additional_attributes=_mapping(additional_attributes, "additional_attributes"),
            message=message,
        )
        return _as_dict(self._request("POST", self._account_path("conversations"), json_body=body))

    def get_conversation(self, conversation_id: int) -> dict[str, Any]:
        """The bare conversation object, by display id."""
        path = self._account_path("conversations", _positive_int(conversation_id, "conversation_id"))
        return _as_dict(self._request("GET", path))

    def list_conversations(
        self,
        *,
        status: str | None = None,
        inbox_id: int | None = None,
        source_id: str | None = None,
        assignee_type: str | None = None,
        sort_by: str | None = None,
        page: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Conversations from ``page`` on (25 a page), until an empty page.

        The platform's default ``status`` is ``open``; pass ``"all"`` for every status.
        ``source_id`` finds the conversations of one contact inbox.
        """
        if status is not None and status not in (*CONVERSATION_STATUSES, "all"):
            raise InvalidInputError(
                f"status must be one of {', '.join(CONVERSATION_STATUSES)} or 'all', not {status!r}."
            )
        params = _compact(
            status=status,
            inbox_id=_positive_int(inbox_id, "inbox_id") if inbox_id is not None else None,
            source_id=source_id,
            assignee_type=assignee_type,
            sort_by=sort_by,
        )
        yield from self._pages("GET", self._account_path("conversations"), params, first_page=page, wrapper="data")

    def toggle_status(
        self,
        conversation_id: int,
        status: str | None = None,
        *,
        snoozed_until: datetime | int | None = None,
    ) -> dict[str, Any]:
        """Set a conversation's status (without ``status``: toggle open/resolved).

        Returns ``{"success", "conversation_id", "current_status", "snoozed_until"}``. Note: with
        an *agent* token, reopening assigns the conversation to that agent (platform behaviour).
        """
        if status is not None and status not in CONVERSATION_STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(CONVERSATION_STATUSES)}, not {status!r}.")
        until: int | None = None
        if isinstance(snoozed_until, datetime):
            if snoozed_until.tzinfo is None:
                raise InvalidInputError("snoozed_until must be an aware datetime (or Unix seconds).")
            until = int(snoozed_until.timestamp())
        elif snoozed_until is not None:
            until = _positive_int(snoozed_until, "snoozed_until")
        path = self._account_path("conversations", _positive_int(conversation_id, "conversation_id"), "toggle_status")
        data = self._request("POST", path, json_body=_compact(status=status, snoozed_until=until))
        return _as_dict(_unwrap(data, "payload"))

    # -- messages ---------------------------------------------------------------------------

    def list_messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[dict[str, Any]]:
        """One page of messages, ascending: the latest 20; or 20 before ``before``; or up to 100
        after ``after``. Activity messages and private notes are included."""
        path = self._messages_path(conversation_id)
        params = _compact(
            before=_positive_int(before, "before") if before is not None else None,
            after=_non_negative_int(after, "after") if after is not None else None,
        )
        data = _as_dict(self._request("GET", path, params=params))
        return _list(data.get("payload"))

    def iter_messages(self, conversation_id: int, *, after: int | None = None) -> Iterator[dict[str, Any]]:
        """Every message of a conversation with an id above ``after`` (all when ``None``),
        ascending, 100 a page, until a short page. Use it to catch up after missed webhooks."""
        last = _non_negative_int(after, "after") if after is not None else 0
        while True:
            page = self.list_messages(conversation_id, after=last)
            yield from page
            if len(page) < MESSAGES_AFTER_PAGE_SIZE:
                return
            new_last = max(int(m["id"]) for m in page)
            if new_last <= last:  # a server that ignores `after` would loop forever
                raise APIError(
                    f"GET {self._messages_path(conversation_id)}: paging with after={last} did not advance.",
                    method="GET",
                )
            last = new_last

    def create_message(
        self,
        conversation_id: int,
        *,
        content: str | None = None,
        message_type: str = "outgoing",
        private: bool = False,
        content_type: str | None = None,
        content_attributes: Mapping[str, Any] | None = None,
        source_id: str | None = None,
        echo_id: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> dict[str, Any]:
        """Post a message; returns the bare message object.

        Sent as JSON, or as ``multipart/form-data`` when there are ``attachments``
        (``(filename, bytes or binary file, mime type)``, at most 15). ``message_type="incoming"``
        posts as the conversation's contact (API inboxes only). ``source_id`` is stored by the
        platform and comes back in webhooks: use it as your idempotency key.
        """
        if message_type not in MESSAGE_TYPES:
            raise InvalidInputError(f"message_type must be one of {', '.join(MESSAGE_TYPES)}, not {message_type!r}.")
        attachments = list(attachments)
        if len(attachments) > MAX_ATTACHMENTS:
            raise InvalidInputError(
                f"A message can carry at most {MAX_ATTACHMENTS} attachments; got {len(attachments)}. "
                "Split them over several messages."
            )
        if not content and not attachments:
            raise InvalidInputError("create_message() needs content or at least one attachment.")
        if content is not None and len(content) > MAX_CONTENT_LENGTH:
            raise InvalidInputError(
                f"content is {len(content)} characters; the platform accepts at most {MAX_CONTENT_LENGTH}."
            )
        fields = _compact(
            content=content,
            message_type=message_type,
            private=bool(private),
            content_type=content_type,
            content_attributes=_mapping(content_attributes, "content_attributes"),
            source_id=source_id,
            echo_id=echo_id,
        )
        path = self._messages_path(conversation_id)
        if not attachments:
            return _as_dict(self._request("POST", path, json_body=fields))
        form: list[tuple[str, str]] = []
        for key, value in fields.items():
            if isinstance(value, bool):
                form.append((key, "true" if value else "false"))
            elif isinstance(value, Mapping):
                form.append((key, json.dumps(value)))  # the platform accepts a JSON string here
            else:
                form.append((key, str(value)))
        files = []
        for index, item in enumerate(attachments):
            try:
                filename, data, mime = item
            except (TypeError, ValueError):
                raise InvalidInputError(f"attachments[{index}] must be a (filename, data, mime type) tuple.") from None
            if not filename or not mime:
                raise InvalidInputError(f"attachments[{index}] needs a filename and a mime type.")
            files.append(("attachments[]", (str(filename), data, str(mime))))
        return _as_dict(self._request("POST", path, form=form, files=files))

    def update_message_status(
        self, conversation_id: int, message_id: int, status: str, *, external_error: str | None = None
    ) -> dict[str, Any]:
        """Report delivery state (``sent``/``delivered``/``read``/``failed``) of a message.

        ``external_error`` is stored (in ``content_attributes``) only with ``failed``. API inboxes
        only; the platform ignores ``read`` -> ``delivered``. Not in the platform's swagger file.
        """
        if status not in MESSAGE_STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(MESSAGE_STATUSES)}, not {status!r}.")
        path = f"{self._messages_path(conversation_id)}/{_positive_int(message_id, 'message_id')}"
        return _as_dict(self._request("PATCH", path, json_body=_compact(status=status, external_error=external_error)))

    def delete_message(self, conversation_id: int, message_id: int) -> dict[str, Any] | None:
        """Soft-delete a message (content becomes "This message was deleted"); returns the
        message when the platform sends it back."""
        path = f"{self._messages_path(conversation_id)}/{_positive_int(message_id, 'message_id')}"
        data = self._request("DELETE", path)
        return data if isinstance(data, dict) else None

    # -- inboxes / profile ------------------------------------------------------------------

    def get_inbox(self, inbox_id: int) -> dict[str, Any]:
        """The inbox; API channels add ``webhook_url``, ``inbox_identifier`` and (for
        administrators) ``secret`` and ``hmac_token``."""
        return _as_dict(self._request("GET", self._account_path("inboxes", _positive_int(inbox_id, "inbox_id"))))

    def get_profile(self) -> dict[str, Any]:
        """The token owner's profile (``GET /api/v1/profile``), to test a token.

        The result contains the ``access_token`` itself: never log or display it whole.
        """
        return _as_dict(self._request("GET", "/api/v1/profile"))

    # -- plumbing ---------------------------------------------------------------------------

    def _account_path(self, *parts: object) -> str:
        return "/".join([f"/api/v1/accounts/{self.account_id}", *(str(p) for p in parts)])

    def _messages_path(self, conversation_id: int) -> str:
        return self._account_path("conversations", _positive_int(conversation_id, "conversation_id"), "messages")

    def _pages(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        *,
        json_body: Any = None,
        first_page: int = 1,
        wrapper: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield items page by page (``?page=N``) until a page is empty."""
        page = _positive_int(first_page, "page")
        previous: list[Any] | None = None
        while True:
            data = _as_dict(self._request(method, path, params={**params, "page": page}, json_body=json_body))
            if wrapper is not None:
                data = _as_dict(data.get(wrapper) or {})
            items = _list(data.get("payload"))
            if not items:
                return
            ids = [item.get("id") for item in items if isinstance(item, dict)]
            if ids == previous:  # a server that ignores `page` would loop forever
                raise APIError(f"{method} {path}: page {page} repeated the previous page.", method=method)
            previous = ids
            yield from items
            page += 1

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: list[tuple[str, str]] | None = None,
        files: Sequence[tuple[str, tuple[str, Any, str]]] | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON body (``None`` when empty)."""
        url = self.base_url + path
        headers = {
            "api_access_token": self.__token,
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                params=params or None,
                json=json_body if files is None else None,
                data=form if files is not None else None,
                files=files,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            elapsed = (time.monotonic() - started) * 1000
            error = self._transport_error(method, path, url, exc)
            logger.debug("%s %s failed after %.0f ms: %s", method, path, elapsed, type(error).__name__)
            if self._scrub(str(exc)) != str(exc):
                # The cause quotes the token (requests' InvalidHeader): it must not travel along.
                raise error from None
            raise error from exc
        elapsed = (time.monotonic() - started) * 1000
        logger.debug("%s %s -> %s in %.0f ms", method, path, response.status_code, elapsed)
        text = response.text if response.content else ""
        if response.status_code >= 300:
            raise self._http_error(method, path, url, response, self._scrub(text))
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            text = self._scrub(text)
            raise APIError(
                f"{method} {path} returned HTTP {response.status_code} with a body that is not JSON: {_excerpt(text)}",
                status=response.status_code,
                body=text[:EXCERPT_LENGTH],
                method=method,
                url=_public_url(url),
            ) from None

    def _scrub(self, text: str) -> str:
        # Defence in depth: a body that echoes the token must not carry it into an exception.
        # (Only bodies quoted in errors: a successful profile legitimately contains the token.)
        # requests quotes a header value it refuses (a token with a line break) as its repr.
        for secret in {self.__token, repr(self.__token)[1:-1]}:
            text = text.replace(secret, "***")
        return text

    def _http_error(self, method: str, path: str, url: str, response: requests.Response, text: str) -> APIError:
        status = response.status_code
        body: Any
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = text[:EXCERPT_LENGTH]
        remote = _remote_message(body, text)
        where = f"{method} {path} returned HTTP {status}"
        common: dict[str, Any] = {"status": status, "body": body, "method": method, "url": _public_url(url)}
        if status == 401:
            if "not authorized for bots" in remote.lower():
                hint = (
                    " The token belongs to an agent bot, which may call only a few endpoints; use the access "
                    "token of a UniLink User (an administrator's is best), from Profile settings > Access token."
                )
            elif "access this account" in remote.lower():
                hint = " The token's user is not a member of this account: check the account id."
            else:
                hint = " Check the API access token."
            return AuthenticationError(f"{where}: {remote}.{hint}", **common)
        if status == 402:
            return PaymentRequiredError(f"{where}: {remote} (the platform's plan lacks this feature).", **common)
        if status == 403:
            return PermissionDeniedError(f"{where}: {remote}", **common)
        if status == 404:
            return NotFoundError(f"{where}: {remote}", **common)
        if status == 422:
            attributes = body.get("attributes") if isinstance(body, dict) else None
            fields = (
                f" (fields: {', '.join(map(str, attributes))})" if isinstance(attributes, list) and attributes else ""
            )
            return ValidationError(f"{where}: {remote}{fields}", **common)
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            when = f" Retry after {retry_after:g} s." if retry_after is not None else " No Retry-After given."
            return RateLimitedError(f"{where} (rate limited): {remote}.{when}", retry_after=retry_after, **common)
        if status >= 500:
            return ServerError(f"{where}: {remote}", **common)
        if 300 <= status < 400:
            location = _strip_userinfo(response.headers.get("Location", ""))
            return APIError(
                f"{where} (a redirect to {location or 'nowhere'}); check the base URL (http vs https, path).",
                **common,
            )
        return APIError(f"{where}: {remote}", **common)

    def _transport_error(self, method: str, path: str, url: str, exc: requests.RequestException) -> TransportError:
        common: dict[str, Any] = {"method": method, "url": _public_url(url)}
        causes = _causes(exc)
        refused = next((c for c in causes if isinstance(c, NewConnectionError)), None)
        if refused is not None or isinstance(exc, requests.exceptions.SSLError):
            # Checked before timeouts: urllib3's NewConnectionError subclasses ConnectTimeoutError.
            return TransportError(
                f"{method} {path}: could not connect ({self._scrub(_describe(refused or causes[-1]))}); "
                "the request was not sent.",
                sent=False,
                **common,
            )
        if isinstance(exc, requests.ConnectTimeout) or any(isinstance(c, ConnectTimeoutError) for c in causes):
            return UnilinkTimeoutError(
                f"{method} {path}: could not connect within {self.timeout[0]:g} s; the request was not sent.",
                sent=False,
                **common,
            )
        if isinstance(exc, requests.ReadTimeout) or any(isinstance(c, ReadTimeoutError) for c in causes):
            return UnilinkTimeoutError(
                f"{method} {path}: no answer within {self.timeout[1]:g} s; the request may have been processed.",
                sent=True,
                **common,
            )
        return TransportError(
            f"{method} {path}: the connection failed after sending ({self._scrub(_describe(causes[-1]))}); "
            "the request may have been processed.",
            sent=True,
            **common,
        )


# -- helpers ------------------------------------------------------------------------------------


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a positive integer, not {value!r}.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a positive integer, not {value!r}.") from None
    if number <= 0 or (isinstance(value, float) and value != number):
        raise InvalidInputError(f"{name} must be a positive integer, not {value!r}.")
    return number


def _non_negative_int(value: Any, name: str) -> int:
    return 0 if value == 0 and not isinstance(value, bool) else _positive_int(value, name)


def _mapping(value: Mapping[str, Any] | None, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{name} must be a dict, not {type(value).__name__}.")
    return dict(value)


def _compact(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not ``None`` (the platform treats absent and null alike
    for these parameters, and the spec types them without null)."""
    return {key: value for key, value in values.items() if value is not None}


def _unwrap(data: Any, key: str) -> Any:
    if isinstance(data, dict) and key in data:
        return data[key]
    return data


def _as_dict(data: Any) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    raise APIError(f"expected a JSON object from the platform, got {type(data).__name__}: {_excerpt(str(data))}")


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _remote_message(body: Any, text: str) -> str:
    """The platform's own words: ``error``, ``message``, or devise's ``errors`` list."""
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)
    return _excerpt(text) or "(empty body)"


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_LENGTH else flat[: EXCERPT_LENGTH - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors under it (through ``MaxRetryError.reason``, wrapped args, causes)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        if isinstance(current, MaxRetryError) and current.reason is not None:
            current = current.reason
        elif current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
        else:
            current = current.__cause__ or current.__context__
    return chain


def _describe(exc: BaseException) -> str:
    text = str(exc)
    # urllib3 puts the connection object's repr in its messages; keep the part after it.
    if ">: " in text:
        text = text.split(">: ", 1)[1]
    return _excerpt(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _public_url(url: str) -> str:
    """The URL without credentials or query string, for exceptions and logs."""
    parts = urlsplit(_strip_userinfo(url))
    return urlunsplit(parts._replace(query="", fragment=""))
