"""The agent console: a server-rendered page at ``/`` and its form endpoints.

Routes (no auth; loopback only):

- ``GET /``: conversations with their messages, a reply form each (``form.reply`` with
  ``textarea[name=content]`` and ``input[name=private]``), resolve/reopen/pending buttons.
- ``POST /console/conversations/<id>/reply`` (``content``, ``private``),
  ``/status`` (``status``), ``/typing`` (``typing_status`` on/off),
  ``/messages/<message_id>/delete``: answer ``303`` back to the page.
- ``GET /console/state.json`` (everything, API shapes) and ``GET /console/version``.
- ``GET /rails/active_storage/.../<attachment_id>/<filename>``: attachment bytes (``data_url``).
"""

from __future__ import annotations

import html
import re
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from . import errors, shapes
from .models import MESSAGE_TYPE_NAMES, Conversation, Message

if TYPE_CHECKING:
    from . import Emulator
    from .server import Handler

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "console.html"
_ACTION_RE = re.compile(r"^/console/conversations/(\d+)/(reply|status|typing)$")
_DELETE_RE = re.compile(r"^/console/conversations/(\d+)/messages/(\d+)/delete$")
_BLOB_RE = re.compile(r"^/rails/active_storage/(?:blobs|representations)/redirect/(\d+)/")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _time(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%H:%M:%S")


def _render_message(emulator: Emulator, c: Conversation, m: Message) -> str:
    store = emulator._store
    kind = MESSAGE_TYPE_NAMES[m.message_type]
    classes = ["message", kind]
    if m.private:
        classes.append("private")
    if m.status == "failed":
        classes.append("failed")
    deleted = bool(m.content_attributes.get("deleted"))
    if deleted:
        classes.append("deleted")
    if kind == "activity":
        return f'<li class="{" ".join(classes)}" data-message-id="{m.id}">{_e(m.content)}</li>'
    if m.sender_type == "Contact":
        who = store.contacts[m.sender_id].name if m.sender_id in store.contacts else "Contact"
    else:
        who = store.user.name
    label = "Private note · " if m.private else ""
    status = f" · {m.status}"
    error = m.content_attributes.get("external_error")
    if error:
        status += f" ({error})"
    files = "".join(
        f'<br><a href="{_e(shapes.attachment_push(store, a)["data_url"])}">{_e(a.filename)}</a>' for a in m.attachments
    )
    delete = (
        ""
        if deleted
        else f' <form method="post" action="/console/conversations/{c.display_id}/messages/{m.id}/delete">'
        '<button type="submit" title="Delete">Delete</button></form>'
    )
    return (
        f'<li class="{" ".join(classes)}" data-message-id="{m.id}">'
        f'<span class="who">{_e(label)}{_e(who)} · {_time(m.created_at)}{_e(status)}{delete}</span>'
        f"{_e(m.content)}{files}</li>"
    )


def _render_conversation(emulator: Emulator, c: Conversation) -> str:
    store = emulator._store
    contact = store.contacts[c.contact_id]
    inbox = store.inboxes.get(c.inbox_id)
    source_id = store.contact_inboxes[c.contact_inbox_id].source_id
    details = " · ".join(_e(v) for v in (contact.email, contact.phone_number, contact.identifier) if v)
    messages = "".join(_render_message(emulator, c, m) for m in store.messages_of(c.display_id))
    buttons = []
    for status, label in (("resolved", "Resolve"), ("open", "Reopen"), ("pending", "Mark pending")):
        if c.status != status:
            buttons.append(
                f'<form method="post" action="/console/conversations/{c.display_id}/status">'
                f'<input type="hidden" name="status" value="{status}">'
                f'<button type="submit" class="{status}">{label}</button></form>'
            )
    return (
        f'<section class="conversation" id="conversation-{c.display_id}" data-conversation-id="{c.display_id}"'
        f' data-status="{_e(c.status)}">'
        f'<h2>#{c.display_id} · {_e(contact.name or "(no name)")} <span class="status status-{_e(c.status)}">'
        f"{_e(c.status)}</span></h2>"
        f'<div class="meta">{details or "no email, phone or identifier"}<br>'
        f"inbox {_e(inbox.name if inbox else c.inbox_id)} · source_id {_e(source_id)}</div>"
        f'<ol class="messages">{messages}</ol>'
        f'<form class="reply" method="post" action="/console/conversations/{c.display_id}/reply">'
        f'<textarea name="content" placeholder="Reply as {_e(store.user.name)}…" required></textarea>'
        '<label><input type="checkbox" name="private" value="1"> Private note</label>'
        '<button type="submit">Send</button></form>'
        f'<div class="actions">{"".join(buttons)}</div></section>'
    )


def render_page(emulator: Emulator) -> str:
    store = emulator._store
    with store.lock:
        rows = sorted(store.conversations.values(), key=lambda c: (c.last_activity_at, c.display_id), reverse=True)
        body = "\n".join(_render_conversation(emulator, c) for c in rows)
        inboxes = ", ".join(
            f"inbox {i.id} “{_e(i.name)}” → {_e(i.webhook_url or 'no webhook URL')}" for i in store.inboxes.values()
        )
        template = string.Template(TEMPLATE_PATH.read_text(encoding="utf-8"))
        account = f"Account {store.account_id} “{_e(store.account_name)}”"
        return template.substitute(
            title=_e(f"{store.account_name} · UniLink emulator"),
            subtitle=f"{account} · API {_e(emulator.url)} · {inboxes or 'no inbox'}",
            version=store.version,
            conversations=body or '<p class="empty">No conversations yet.</p>',
        )


def state(emulator: Emulator) -> dict[str, Any]:
    store = emulator._store
    with store.lock:
        return {
            "version": store.version,
            "account": shapes.account_brief(store),
            "contacts": emulator.contacts(),
            "conversations": emulator.conversations(),
            "messages": emulator.messages(),
        }


def _error_page(handler: Handler, status: int, message: str) -> None:
    body = (
        f"<!doctype html><meta charset=utf-8><title>Error</title><p>{_e(message)}</p>"
        '<p><a href="/">Back to the console</a></p>'
    ).encode()
    handler.send_body(status, body, "text/html; charset=utf-8")


def handle(emulator: Emulator, handler: Handler, path: str, query: str, body: bytes) -> None:
    """Serve one console (non-API) request."""
    method = handler.command
    if method == "GET" and path in ("/", "/console", "/console/"):
        handler.send_body(200, render_page(emulator).encode("utf-8"), "text/html; charset=utf-8")
        return
    if method == "GET" and path == "/console/state.json":
        handler.send_json(200, state(emulator))
        return
    if method == "GET" and path == "/console/version":
        handler.send_json(200, {"version": emulator._store.version})
        return
    blob = _BLOB_RE.match(path)
    if method == "GET" and blob:
        with emulator._store.lock:
            wanted = int(blob.group(1))
            for message in emulator._store.messages.values():
                for attachment in message.attachments:
                    if attachment.id == wanted:
                        handler.send_body(200, attachment.data, attachment.content_type)
                        return
        raise errors.route_not_found()
    if method != "POST":
        raise errors.route_not_found()
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    action = _ACTION_RE.match(path)
    delete = _DELETE_RE.match(path)
    try:
        if action:
            conversation_id, verb = int(action.group(1)), action.group(2)
            if verb == "reply":
                content = form.get("content", "").replace("\r\n", "\n")
                if not content.strip():
                    _error_page(handler, 422, "Write something first.")
                    return
                emulator.agent_reply(conversation_id, content, private=bool(form.get("private")))
            elif verb == "status":
                emulator.set_status(conversation_id, form.get("status", ""))
            else:
                emulator.agent_typing(conversation_id, form.get("typing_status", "on") != "off")
                handler.send_body(204, b"", "text/plain")
                return
        elif delete:
            conversation_id = int(delete.group(1))
            emulator.delete_message(conversation_id, int(delete.group(2)))
        else:
            raise errors.route_not_found()
    except LookupError as exc:
        _error_page(handler, 404, str(exc))
        return
    except ValueError as exc:
        _error_page(handler, 422, str(exc))
        return
    handler.send_body(303, b"", "text/plain", {"Location": f"/#conversation-{conversation_id}"})
