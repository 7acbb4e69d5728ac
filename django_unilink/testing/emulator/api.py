"""The Application API subset (``/api/v1/...``): auth, routing and one handler per endpoint.

Each handler gets the :class:`~.state.Store` and an :class:`ApiRequest` and returns
``(status, body)``; errors are raised as :class:`~.errors.ApiError`. Section numbers refer to
``unilink-api.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import errors, shapes
from .models import Contact, Conversation, secure_token
from .state import Store, to_bool, to_int

CONTACTS_PER_PAGE = 15  # §1.2 RESULTS_PER_PAGE
CONVERSATIONS_PER_PAGE = 25  # §1.3
MESSAGES_PER_PAGE = 20  # §1.4 MessageFinder
MESSAGES_AFTER_LIMIT = 100
MESSAGES_RANGE_LIMIT = 1000

Result = tuple[int, Any]


@dataclass
class ApiRequest:
    """A parsed request: ``params`` merges the query string and the body, like Rails' ``params``."""

    method: str
    path: str
    headers: Mapping[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    files: list[tuple[str, str, bytes]] = field(default_factory=list)
    query: dict[str, Any] = field(default_factory=dict)


# -- auth (§1.1) --------------------------------------------------------------------------------


def authenticate(store: Store, request: ApiRequest, account: str | None) -> None:
    """Check ``api_access_token`` (or ``Api-Access-Token``) and the account id in the path."""
    token = request.headers.get("api_access_token") or request.headers.get("Api-Access-Token")
    if not token:
        raise errors.ApiError(401, {"errors": ["You need to sign in or sign up before continuing."]})
    if token != store.api_access_token:
        raise errors.ApiError(401, {"error": "Invalid Access Token"})
    if account is not None and to_int(account) != store.account_id:
        # The user is not a member of any other account (a real server answers 404 for ids
        # that exist nowhere; the emulator knows only one account).
        raise errors.ApiError(401, {"error": "You are not authorized to access this account"})


# -- helpers ------------------------------------------------------------------------------------


def _page(params: Mapping[str, Any]) -> tuple[int, Any]:
    """The page number, and ``current_page`` as the platform echoes it (a string when passed)."""
    raw = params.get("page")
    number = to_int(raw)
    page = number if number is not None and number > 0 else 1
    return page, (raw if raw not in (None, "") else 1)


def _slice(items: list[Any], page: int, size: int) -> list[Any]:
    return items[(page - 1) * size : page * size]


def _resolved(c: Contact) -> bool:
    """``Contact.resolved_contacts``: those with an email, phone number or identifier (§1.2)."""
    return bool(c.email or c.phone_number or c.identifier)


_SORTABLE = {"name", "email", "phone_number", "last_activity_at", "created_at"}


def _sort_contacts(contacts: list[Contact], sort: Any) -> list[Contact]:
    key = str(sort or "-last_activity_at")
    descending = key.startswith("-")
    attribute = key.lstrip("-")
    if attribute not in _SORTABLE:
        attribute, descending = "last_activity_at", True
    present = [c for c in contacts if getattr(c, attribute) not in (None, "")]
    missing = [c for c in contacts if getattr(c, attribute) in (None, "")]

    def value(c: Contact) -> Any:
        raw = getattr(c, attribute)
        return raw.lower() if isinstance(raw, str) else raw

    present.sort(key=lambda c: c.id)
    present.sort(key=value, reverse=descending)
    return present + sorted(missing, key=lambda c: c.id)  # NULLS LAST


def _contact_list(store: Store, contacts: list[Contact], params: Mapping[str, Any]) -> dict[str, Any]:
    page, current = _page(params)
    rows = _slice(contacts, page, CONTACTS_PER_PAGE)
    include = to_bool(params.get("include_contact_inboxes", True))
    return {
        "meta": {"count": len(contacts), "current_page": current},
        "payload": [shapes.contact_json(store, c, with_contact_inboxes=include) for c in rows],
    }


# -- profile / inboxes ----------------------------------------------------------------------------


def get_profile(store: Store, request: ApiRequest) -> Result:
    return 200, shapes.profile(store)


def list_inboxes(store: Store, request: ApiRequest) -> Result:
    return 200, {"payload": [shapes.inbox_json(store, i) for i in store.inboxes.values()]}


def get_inbox(store: Store, request: ApiRequest, inbox: str) -> Result:
    return 200, shapes.inbox_json(store, store.inbox(inbox))


def reset_inbox_secret(store: Store, request: ApiRequest, inbox: str) -> Result:
    """POST /inboxes/{id}/reset_secret (§1.5); administrators only."""
    found = store.inbox(inbox)
    if not store.admin:
        raise errors.ApiError(401, {"error": "You are not authorized to do this action"})
    found.secret = secure_token()
    store.version += 1
    return 200, shapes.inbox_json(store, found)


# -- contacts (§1.2) -----------------------------------------------------------------------------


def list_contacts(store: Store, request: ApiRequest) -> Result:
    contacts = [c for c in store.contacts.values() if _resolved(c)]
    return 200, _contact_list(store, _sort_contacts(contacts, request.params.get("sort")), request.params)


def create_contact(store: Store, request: ApiRequest) -> Result:
    contact, contact_inbox = store.create_contact(request.params)
    return 200, {
        "payload": {
            "contact": shapes.contact_json(store, contact),
            "contact_inbox": {
                "inbox": shapes.inbox_record(store, store.inboxes[contact_inbox.inbox_id]) if contact_inbox else None,
                "source_id": contact_inbox.source_id if contact_inbox else None,
            },
        }
    }


def search_contacts(store: Store, request: ApiRequest) -> Result:
    q = request.params.get("q")
    if q in (None, ""):
        raise errors.unprocessable("Specify search string with parameter q")
    needle = str(q)
    lowered = needle.lower()
    found = [
        c
        for c in store.contacts.values()
        if lowered in (c.name or "").lower()
        or lowered in (c.email or "").lower()
        or lowered in (c.phone_number or "").lower()
        or needle in (c.identifier or "")  # identifier LIKE: case-sensitive
    ]
    found = _sort_contacts(found, request.params.get("sort"))
    page, current = _page(request.params)
    rows = _slice(found, page, CONTACTS_PER_PAGE)
    include = to_bool(request.params.get("include_contact_inboxes", True))
    return 200, {
        # §1.2: count is the rows of this page; there is no total.
        "meta": {"count": len(rows), "current_page": current, "has_more": len(found) > page * CONTACTS_PER_PAGE},
        "payload": [shapes.contact_json(store, c, with_contact_inboxes=include) for c in rows],
    }


_FILTER_KEYS = ("name", "email", "phone_number", "identifier")


def _filter_match(contact: Contact, condition: Mapping[str, Any]) -> bool:
    key = condition.get("attribute_key")
    operator = condition.get("filter_operator")
    values = condition.get("values")
    if not isinstance(values, list):
        values = [values] if values is not None else []
    current = getattr(contact, str(key)) or ""
    wanted = [str(v).lower() for v in values]
    text = str(current).lower()
    if operator == "equal_to":
        return text in wanted
    if operator == "not_equal_to":
        return text not in wanted
    if operator == "contains":
        return any(w in text for w in wanted)
    if operator == "does_not_contain":
        return not any(w in text for w in wanted)
    if operator == "is_present":
        return bool(text)
    if operator == "is_not_present":
        return not text
    raise errors.unprocessable(f"Invalid filter operator - {operator}")


def filter_contacts(store: Store, request: ApiRequest) -> Result:
    """POST /contacts/filter: a subset (name/email/phone_number/identifier, text operators)."""
    conditions = request.params.get("payload")
    if not isinstance(conditions, list) or not conditions:
        raise errors.unprocessable("param is missing or the value is empty: payload")
    for condition in conditions:
        if not isinstance(condition, Mapping) or condition.get("attribute_key") not in _FILTER_KEYS:
            key = condition.get("attribute_key") if isinstance(condition, Mapping) else condition
            raise errors.unprocessable(f"Invalid attribute key - {key}")
    found = []
    for contact in store.contacts.values():
        # SQL precedence: AND binds tighter than OR; query_operator joins an item to the next.
        groups: list[list[bool]] = [[]]
        for index, condition in enumerate(conditions):
            groups[-1].append(_filter_match(contact, condition))
            operator = str(condition.get("query_operator") or "AND").upper()
            if index < len(conditions) - 1 and operator == "OR":
                groups.append([])
        if any(all(group) for group in groups):
            found.append(contact)
    return 200, _contact_list(store, _sort_contacts(found, request.params.get("sort")), request.params)


def get_contact(store: Store, request: ApiRequest, contact: str) -> Result:
    include = to_bool(request.params.get("include_contact_inboxes", True))
    return 200, {"payload": shapes.contact_json(store, store.contact(contact), with_contact_inboxes=include)}


def update_contact(store: Store, request: ApiRequest, contact: str) -> Result:
    updated = store.update_contact(store.contact(contact), request.params)
    return 200, {"payload": shapes.contact_json(store, updated)}


def create_contact_inbox(store: Store, request: ApiRequest, contact: str) -> Result:
    """POST /contacts/{id}/contact_inboxes: a bare ``{source_id, inbox}`` (§1.2)."""
    found = store.contact(contact)
    inbox = store.inbox(request.params.get("inbox_id"))
    ci = store.ensure_contact_inbox(
        found, inbox, request.params.get("source_id"), to_bool(request.params.get("hmac_verified"))
    )
    return 200, {"source_id": ci.source_id, "inbox": shapes.inbox_slim(inbox)}


def contact_conversations(store: Store, request: ApiRequest, contact: str) -> Result:
    found = store.contact(contact)
    rows = [c for c in store.conversations.values() if c.contact_id == found.id]
    rows.sort(key=lambda c: (c.last_activity_at, c.display_id), reverse=True)
    return 200, {"payload": [shapes.conversation_api(store, c) for c in rows[:20]]}


def contactable_inboxes(store: Store, request: ApiRequest, contact: str) -> Result:
    found = store.contact(contact)
    rows = []
    for inbox in store.inboxes.values():
        existing = [ci for ci in store.contact_inboxes_of(found.id) if ci.inbox_id == inbox.id]
        rows.append({"inbox": shapes.inbox_slim(inbox), "source_id": existing[0].source_id if existing else None})
    return 200, {"payload": rows}


# -- conversations (§1.3) ----------------------------------------------------------------------------


def _conversation_rows(store: Store, params: Mapping[str, Any]) -> list[Conversation]:
    status = params.get("status") or "open"
    rows = list(store.conversations.values())
    if status != "all":
        rows = [c for c in rows if c.status == status]
    inbox_id = to_int(params.get("inbox_id"))
    if params.get("inbox_id") not in (None, ""):
        rows = [c for c in rows if c.inbox_id == inbox_id]
    source_id = params.get("source_id")
    if source_id not in (None, ""):
        rows = [c for c in rows if store.contact_inboxes[c.contact_inbox_id].source_id == str(source_id)]
    q = params.get("q")
    if q not in (None, ""):
        needle = str(q).lower()
        rows = [c for c in rows if any(needle in (m.content or "").lower() for m in store.messages_of(c.display_id))]
    within = to_int(params.get("updated_within"))
    if within is not None:
        from .models import now

        rows = [c for c in rows if c.updated_at >= now() - within]
    return rows


def _conversation_meta(store: Store, rows: list[Conversation]) -> dict[str, int]:
    mine = sum(1 for c in rows if c.assignee_id == store.user.id)
    assigned = sum(1 for c in rows if c.assignee_id is not None)
    return {
        "mine_count": mine,
        "assigned_count": assigned,
        "unassigned_count": len(rows) - assigned,
        "all_count": len(rows),
    }


_SORTS: dict[str, tuple[Callable[[Conversation], Any], bool]] = {
    "last_activity_at_desc": (lambda c: (c.last_activity_at, c.display_id), True),
    "last_activity_at_asc": (lambda c: (c.last_activity_at, c.display_id), False),
    "created_at_desc": (lambda c: (c.created_at, c.display_id), True),
    "created_at_asc": (lambda c: (c.created_at, c.display_id), False),
    "waiting_since_asc": (lambda c: (c.waiting_since or float("inf"), c.display_id), False),
}


def list_conversations(store: Store, request: ApiRequest) -> Result:
    """GET /conversations: ``{"data": {"meta", "payload"}}``, 25 a page, status ``open`` by default."""
    params = request.params
    rows = _conversation_rows(store, params)
    meta = _conversation_meta(store, rows)
    assignee_type = params.get("assignee_type") or "all"
    if assignee_type == "me":
        rows = [c for c in rows if c.assignee_id == store.user.id]
    elif assignee_type == "assigned":
        rows = [c for c in rows if c.assignee_id is not None]
    elif assignee_type == "unassigned":
        rows = [c for c in rows if c.assignee_id is None]
    key, reverse = _SORTS.get(str(params.get("sort_by") or ""), _SORTS["last_activity_at_desc"])
    rows.sort(key=key, reverse=reverse)
    if to_int(params.get("updated_within")) is None:  # updated_within disables pagination
        page, _ = _page(params)
        rows = _slice(rows, page, CONVERSATIONS_PER_PAGE)
    return 200, {"data": {"meta": meta, "payload": [shapes.conversation_api(store, c) for c in rows]}}


def conversations_meta(store: Store, request: ApiRequest) -> Result:
    return 200, {"meta": _conversation_meta(store, _conversation_rows(store, request.params))}


def create_conversation(store: Store, request: ApiRequest) -> Result:
    conversation = store.create_conversation(request.params)
    return 200, shapes.conversation_api(store, conversation)


def get_conversation(store: Store, request: ApiRequest, conversation: str) -> Result:
    return 200, shapes.conversation_api(store, store.conversation(conversation))


def toggle_status(store: Store, request: ApiRequest, conversation: str) -> Result:
    found = store.conversation(conversation)
    store.set_status(found, request.params.get("status"), request.params.get("snoozed_until"))
    return 200, {
        "meta": {},
        "payload": {
            "success": True,
            "conversation_id": found.display_id,
            "current_status": found.status,
            "snoozed_until": shapes.iso(found.snoozed_until),
        },
    }


def toggle_typing(store: Store, request: ApiRequest, conversation: str) -> Result:
    found = store.conversation(conversation)
    typing = request.params.get("typing_status")
    if typing not in ("on", "off", "recording"):
        raise errors.unprocessable("param is missing or the value is empty: typing_status")
    store.typing(found, typing != "off", to_bool(request.params.get("is_private")))
    return 200, None


def set_custom_attributes(store: Store, request: ApiRequest, conversation: str) -> Result:
    found = store.conversation(conversation)
    attributes = request.params.get("custom_attributes")
    store.set_custom_attributes(found, attributes if isinstance(attributes, Mapping) else {})
    return 200, {"custom_attributes": dict(found.custom_attributes)}


def assign(store: Store, request: ApiRequest, conversation: str) -> Result:
    """POST /conversations/{id}/assignments: only the token's own user (or nobody) here."""
    found = store.conversation(conversation)
    assignee = to_int(request.params.get("assignee_id"))
    if assignee is not None and assignee != store.user.id:
        raise errors.not_found()
    store.assign(found, assignee)
    return 200, shapes.agent_partial(store, store.user) if assignee is not None else None


# -- messages (§1.4) -----------------------------------------------------------------------------------


def list_messages(store: Store, request: ApiRequest, conversation: str) -> Result:
    found = store.conversation(conversation)
    params = request.params
    rows = store.messages_of(found.display_id)
    if to_bool(params.get("filter_internal_messages")):
        rows = [m for m in rows if not m.private and m.message_type != 2]
    after, before = to_int(params.get("after")), to_int(params.get("before"))
    if after is not None and before is not None:
        rows = [m for m in rows if after <= m.id < before][:MESSAGES_RANGE_LIMIT]
    elif before is not None:
        rows = [m for m in rows if m.id < before][-MESSAGES_PER_PAGE:]
    elif after is not None:
        rows = [m for m in rows if m.id > after][:MESSAGES_AFTER_LIMIT]
    else:
        rows = rows[-MESSAGES_PER_PAGE:]
    return 200, {"meta": shapes.messages_meta(store, found), "payload": [shapes.message_api(store, m) for m in rows]}


def create_message(store: Store, request: ApiRequest, conversation: str) -> Result:
    found = store.conversation(conversation)
    message = store.create_message(found, request.params, request.files)
    echo_id = request.params.get("echo_id")
    return 200, shapes.message_api(store, message, echo_id=None if echo_id in (None, "") else str(echo_id))


def update_message(store: Store, request: ApiRequest, conversation: str, message: str) -> Result:
    found = store.message(store.conversation(conversation), message)
    store.update_message_status(found, request.params.get("status"), request.params.get("external_error"))
    return 200, shapes.message_api(store, found)


def delete_message(store: Store, request: ApiRequest, conversation: str, message: str) -> Result:
    found = store.message(store.conversation(conversation), message)
    store.delete_message(found)
    return 200, shapes.message_api(store, found)


# -- routing ---------------------------------------------------------------------------------------

_A = r"^/api/v1/accounts/(?P<account>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], Callable[..., Result]]] = [
    ("GET", re.compile(r"^/api/v1/profile$"), get_profile),
    ("GET", re.compile(_A + r"/inboxes$"), list_inboxes),
    ("GET", re.compile(_A + r"/inboxes/(?P<inbox>[^/]+)$"), get_inbox),
    ("POST", re.compile(_A + r"/inboxes/(?P<inbox>[^/]+)/reset_secret$"), reset_inbox_secret),
    ("GET", re.compile(_A + r"/contacts$"), list_contacts),
    ("POST", re.compile(_A + r"/contacts$"), create_contact),
    ("GET", re.compile(_A + r"/contacts/search$"), search_contacts),
    ("POST", re.compile(_A + r"/contacts/filter$"), filter_contacts),
    ("GET", re.compile(_A + r"/contacts/(?P<contact>[^/]+)$"), get_contact),
    ("PUT", re.compile(_A + r"/contacts/(?P<contact>[^/]+)$"), update_contact),
    ("PATCH", re.compile(_A + r"/contacts/(?P<contact>[^/]+)$"), update_contact),
    ("POST", re.compile(_A + r"/contacts/(?P<contact>[^/]+)/contact_inboxes$"), create_contact_inbox),
    ("GET", re.compile(_A + r"/contacts/(?P<contact>[^/]+)/conversations$"), contact_conversations),
    ("GET", re.compile(_A + r"/contacts/(?P<contact>[^/]+)/contactable_inboxes$"), contactable_inboxes),
    ("GET", re.compile(_A + r"/conversations$"), list_conversations),
    ("POST", re.compile(_A + r"/conversations$"), create_conversation),
    ("GET", re.compile(_A + r"/conversations/meta$"), conversations_meta),
    ("GET", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)$"), get_conversation),
    ("POST", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/toggle_status$"), toggle_status),
    ("POST", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/toggle_typing_status$"), toggle_typing),
    ("POST", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/custom_attributes$"), set_custom_attributes),
    ("POST", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/assignments$"), assign),
    ("GET", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/messages$"), list_messages),
    ("POST", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/messages$"), create_message),
    ("PATCH", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/messages/(?P<message>[^/]+)$"), update_message),
    ("PUT", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/messages/(?P<message>[^/]+)$"), update_message),
    ("DELETE", re.compile(_A + r"/conversations/(?P<conversation>[^/]+)/messages/(?P<message>[^/]+)$"), delete_message),
]


def handle(store: Store, request: ApiRequest) -> Result:
    """Route, authenticate and run one API request; returns ``(status, body)``."""
    for method, pattern, handler in _ROUTES:
        match = pattern.match(request.path)
        if match and method == request.method:
            kwargs = match.groupdict()
            account = kwargs.pop("account", None)
            try:
                with store.lock:
                    authenticate(store, request, account)
                    return handler(store, request, **kwargs)
            except errors.ApiError as exc:
                return exc.status, exc.body
    raise errors.route_not_found()
