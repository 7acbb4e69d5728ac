"""The emulator's in-memory state and every change the platform would make to it.

All reads and writes happen under :attr:`Store.lock`. Each change that the real platform
announces queues a webhook :class:`Event` through ``Store.emit``; the payload is built later,
at delivery time, from the state at that moment (as the platform builds it at job time, §3.1).
Errors are raised as :class:`~.errors.ApiError` with the platform's status and body.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .models import (
    CONTENT_TYPES,
    CONVERSATION_STATUSES,
    MESSAGE_STATUSES,
    MESSAGE_TYPES,
    Attachment,
    Contact,
    ContactInbox,
    Conversation,
    Inbox,
    Message,
    User,
    now,
    secure_token,
)
from .shapes import iso

MAX_CONTENT = 150_000  # §1.4 `content`
MAX_ATTACHMENTS = 15  # §1.4 `Message::NUMBER_OF_PERMITTED_ATTACHMENTS`
MAX_STRING = 255  # §1.2 string columns
DELETED_CONTENT = "This message was deleted"  # §1.4 DELETE
EMAIL_RE = re.compile(r"\A[^@\s]+@[^@\s]+\Z")  # Devise.email_regexp
# §1.2: the model's regex is /\+[1-9]\d{1,14}\z/ with no start anchor, so "x+15555550123"
# passes; re.search keeps that quirk.
PHONE_RE = re.compile(r"\+[1-9]\d{1,14}\Z")
# §3.2 `conversation_updated`: only changes of these attributes are announced.
TRACKED_CONVERSATION_KEYS = (
    "team_id",
    "assignee_id",
    "status",
    "snoozed_until",
    "custom_attributes",
    "label_list",
    "waiting_since",
    "first_reply_created_at",
    "priority",
)
_TIME_KEYS = {"snoozed_until", "waiting_since", "first_reply_created_at", "updated_at"}
# config/locales/en.yml `conversations.activity.status.*`
_STATUS_ACTIVITY = {
    "resolved": "Conversation was marked resolved by {name}",
    "open": "Conversation was reopened by {name}",
    "pending": "Conversation was marked as pending by {name}",
    "snoozed": "Conversation was snoozed by {name}",
}
_AUTO_REOPEN_ACTIVITY = "System reopened the conversation due to a new incoming message."

_FALSE_VALUES = {False, "0", "f", "F", "false", "FALSE", "off", "OFF", ""}


def to_bool(value: Any) -> bool:
    """ActiveModel's boolean cast: anything but the usual false spellings (and nil) is true."""
    if value is None:
        return False
    return value not in _FALSE_VALUES


def to_int(value: Any) -> int | None:
    """Ruby's ``to_i``-ish lookup id: ``None`` when it is not an integer at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


@dataclass
class Event:
    """A webhook to deliver: ``kind`` says which record ``ref`` points at."""

    event: str
    inbox_id: int
    kind: str  # "message" | "conversation" | "typing"
    ref: int
    changed_attributes: list[dict[str, Any]] | None = None
    has_changed_attributes: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    """Everything one emulated account holds, plus the mutations the API and console perform."""

    def __init__(
        self,
        *,
        account_id: int,
        account_name: str,
        api_access_token: str,
        admin: bool,
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.account_id = account_id
        self.account_name = account_name
        self.api_access_token = api_access_token
        self.admin = admin
        self.user = User(role="administrator" if admin else "agent")
        self.base_url = ""
        self.started_at = now()
        #: §4.1 model-level flood guard; ``None`` disables it.
        self.flood_limit: int | None = 200
        self.emit: Callable[[Event], None] = emit or (lambda event: None)
        self.inboxes: dict[int, Inbox] = {}
        self.version = 0
        self.reset()

    def reset(self) -> None:
        """Forget contacts, conversations and messages (inboxes stay)."""
        with self.lock:
            self.contacts: dict[int, Contact] = {}
            self.contact_inboxes: dict[int, ContactInbox] = {}
            self.conversations: dict[int, Conversation] = {}
            self.messages: dict[int, Message] = {}
            self._conversation_messages: dict[int, list[int]] = {}
            self._ids = {"contact": 0, "contact_inbox": 200, "conversation": 0, "message": 1000, "attachment": 500}
            self.version += 1

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def _changed(self) -> None:
        self.version += 1

    # -- lookups -------------------------------------------------------------------------------

    def inbox(self, inbox_id: Any) -> Inbox:
        key = to_int(inbox_id)
        found = self.inboxes.get(key) if key is not None else None
        if found is None:
            raise errors.not_found()
        return found

    def contact(self, contact_id: Any) -> Contact:
        key = to_int(contact_id)
        found = self.contacts.get(key) if key is not None else None
        if found is None:
            raise errors.not_found()
        return found

    def conversation(self, display_id: Any) -> Conversation:
        key = to_int(display_id)
        found = self.conversations.get(key) if key is not None else None
        if found is None:
            raise errors.not_found()
        return found

    def message(self, conversation: Conversation, message_id: Any) -> Message:
        key = to_int(message_id)
        found = self.messages.get(key) if key is not None else None
        if found is None or found.conversation_id != conversation.display_id:
            raise errors.not_found()
        return found

    def contact_inboxes_of(self, contact_id: int) -> list[ContactInbox]:
        return [ci for ci in self.contact_inboxes.values() if ci.contact_id == contact_id]

    def messages_of(self, display_id: int) -> list[Message]:
        return [self.messages[i] for i in self._conversation_messages.get(display_id, [])]

    def unread_count(self, c: Conversation) -> int:
        seen = c.agent_last_seen_at
        count = 0
        for m in self.messages_of(c.display_id):
            if m.message_type == 0 and (seen is None or m.created_at > seen):
                count += 1
        return min(count, 10)

    # -- inboxes -------------------------------------------------------------------------------

    def add_inbox(self, inbox_id: int | None, name: str, webhook_url: str | None, secret: str | None) -> Inbox:
        with self.lock:
            if inbox_id is None:
                inbox_id = max(self.inboxes, default=0) + 1
            if inbox_id in self.inboxes:
                raise ValueError(f"inbox {inbox_id} already exists")
            inbox = Inbox(
                id=inbox_id,
                channel_id=len(self.inboxes) + 1,
                name=name,
                webhook_url=webhook_url or None,
                secret=secret if secret is not None else secure_token(),
            )
            self.inboxes[inbox_id] = inbox
            self._changed()
            return inbox

    # -- contacts ------------------------------------------------------------------------------

    def _validate_contact(self, values: dict[str, Any], exclude_id: int | None) -> None:
        problems: list[tuple[str, str]] = []
        others = [c for c in self.contacts.values() if c.id != exclude_id]
        email = values.get("email")
        if email:
            if any(c.email and c.email.lower() == email.lower() for c in others):
                problems.append(("email", "Email has already been taken"))
            if not EMAIL_RE.match(email):
                problems.append(("email", "Email Invalid email"))
        identifier = values.get("identifier")
        if identifier and any(c.identifier == identifier for c in others):
            problems.append(("identifier", "Identifier has already been taken"))
        phone = values.get("phone_number")
        if phone:
            if any(c.phone_number == phone for c in others):
                problems.append(("phone_number", "Phone number has already been taken"))
            if not PHONE_RE.search(phone):
                problems.append(("phone_number", "Phone number should be in e164 format"))
        for key, label in (
            ("name", "Name"),
            ("email", "Email"),
            ("identifier", "Identifier"),
            ("phone_number", "Phone number"),
        ):
            value = values.get(key)
            if isinstance(value, str) and len(value) > MAX_STRING:
                problems.append((key, f"{label} is too long (maximum is {MAX_STRING} characters)"))
        if problems:
            raise errors.record_invalid(problems)

    @staticmethod
    def _contact_values(params: Mapping[str, Any], current: Contact | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key in ("name", "email", "phone_number", "identifier", "avatar_url"):
            if key in params:
                raw = params[key]
                text = None if raw is None else str(raw)
                if key == "email" and text:
                    text = text.strip().lower()  # Contact#prepare_email_attribute downcases
                if key in ("email", "phone_number", "identifier") and not text:
                    text = None
                if key in ("name", "avatar_url") and text is None:
                    text = ""
                values[key] = text
            elif current is not None:
                values[key] = getattr(current, key)
        if "blocked" in params:
            values["blocked"] = to_bool(params["blocked"])
        return values

    def create_contact(self, params: Mapping[str, Any]) -> tuple[Contact, ContactInbox | None]:
        """POST /contacts: validate, then (all or nothing) the contact and its contact inbox."""
        with self.lock:
            values = self._contact_values(params, None)
            self._validate_contact(values, None)
            inbox = None
            if params.get("inbox_id") not in (None, ""):
                inbox = self.inbox(params["inbox_id"])  # 404, and the transaction rolls back
                source_id = params.get("source_id")
                if source_id not in (None, "") and self._source_taken(inbox.id, str(source_id), None):
                    raise errors.unprocessable("source_id should be unique")
            contact = Contact(
                id=self._next("contact"),
                name=values.get("name") or "",
                email=values.get("email"),
                phone_number=values.get("phone_number"),
                identifier=values.get("identifier"),
                avatar_url=values.get("avatar_url") or "",
                blocked=bool(values.get("blocked", False)),
                additional_attributes=_mapping(params.get("additional_attributes")),
                custom_attributes=_mapping(params.get("custom_attributes")),
            )
            self.contacts[contact.id] = contact
            contact_inbox = None
            if inbox is not None:
                contact_inbox = self.ensure_contact_inbox(contact, inbox, params.get("source_id"), False)
            self._changed()
            return contact, contact_inbox

    def update_contact(self, contact: Contact, params: Mapping[str, Any]) -> Contact:
        """PUT/PATCH /contacts/{id}: attributes hashes are merged, not replaced (§1.2)."""
        with self.lock:
            values = self._contact_values(params, contact)
            self._validate_contact(values, contact.id)
            for key, value in values.items():
                setattr(contact, key, value)
            contact.additional_attributes.update(_mapping(params.get("additional_attributes")))
            contact.custom_attributes.update(_mapping(params.get("custom_attributes")))
            contact.updated_at = now()
            self._changed()
            return contact

    def _source_taken(self, inbox_id: int, source_id: str, contact_id: int | None) -> bool:
        return any(
            ci.inbox_id == inbox_id and ci.source_id == source_id and ci.contact_id != contact_id
            for ci in self.contact_inboxes.values()
        )

    def ensure_contact_inbox(self, contact: Contact, inbox: Inbox, source_id: Any, hmac_verified: bool) -> ContactInbox:
        """ContactInboxBuilder: find or create by (contact, inbox, source_id); uuid when no source_id."""
        with self.lock:
            source = str(source_id) if source_id not in (None, "") else str(uuid.uuid4())
            for ci in self.contact_inboxes.values():
                if ci.contact_id == contact.id and ci.inbox_id == inbox.id and ci.source_id == source:
                    return ci
            if self._source_taken(inbox.id, source, contact.id):
                # the unique index (inbox_id, source_id) raises RecordNotUnique (§1.3)
                raise errors.unprocessable("source_id should be unique")
            ci = ContactInbox(
                id=self._next("contact_inbox"),
                contact_id=contact.id,
                inbox_id=inbox.id,
                source_id=source,
                hmac_verified=hmac_verified,
            )
            self.contact_inboxes[ci.id] = ci
            self._changed()
            return ci

    # -- conversations -------------------------------------------------------------------------

    def create_conversation(self, params: Mapping[str, Any]) -> Conversation:
        """POST /conversations (§1.3): resolve the contact inbox, create, then the initial message."""
        with self.lock:
            message_params = params.get("message")
            if message_params is not None and not isinstance(message_params, Mapping):
                message_params = None
            status = params.get("status") or "open"
            if status not in CONVERSATION_STATUSES:
                raise errors.unprocessable(f"'{status}' is not a valid status")
            # Only inbox_id AND contact_id find-or-create the contact inbox (§1.3).
            if params.get("inbox_id") not in (None, "") and params.get("contact_id") not in (None, ""):
                inbox = self.inbox(params["inbox_id"])
                contact = self.contact(params.get("contact_id"))
                hmac_verified = to_bool(params.get("hmac_verified"))
                # Check the initial message before anything is written (one transaction upstream).
                if message_params:
                    self._check_message(None, message_params, [])
                contact_inbox = self.ensure_contact_inbox(contact, inbox, params.get("source_id"), hmac_verified)
            else:
                # Fallback of the controller: ContactInbox.find_by!(source_id:) across the database.
                source_id = params.get("source_id")
                found = [ci for ci in self.contact_inboxes.values() if source_id and ci.source_id == str(source_id)]
                if not found:
                    raise errors.not_found()
                contact_inbox = found[0]
                if message_params:
                    self._check_message(None, message_params, [])
            created = now()
            conversation = Conversation(
                display_id=self._next("conversation"),
                inbox_id=contact_inbox.inbox_id,
                contact_id=contact_inbox.contact_id,
                contact_inbox_id=contact_inbox.id,
                status=status,
                assignee_id=self.user.id if to_int(params.get("assignee_id")) == self.user.id else None,
                custom_attributes=_mapping(params.get("custom_attributes")),
                additional_attributes=_mapping(params.get("additional_attributes")),
                snoozed_until=_unix_param(params.get("snoozed_until")) if status == "snoozed" else None,
                waiting_since=created,  # Conversation#ensure_waiting_since
                created_at=created,
                updated_at=created,
                last_activity_at=created,
            )
            self.conversations[conversation.display_id] = conversation
            self._conversation_messages[conversation.display_id] = []
            self.emit(Event("conversation_created", conversation.inbox_id, "conversation", conversation.display_id))
            self._changed()
            if message_params:
                self.create_message(conversation, message_params, [])
            return conversation

    def _conversation_update(self, c: Conversation, changes: dict[str, Any]) -> list[dict[str, Any]]:
        """Apply ``changes``; announce them like Conversation's after_update_commit callbacks."""
        before = {key: getattr(c, key) for key in changes}
        previous_updated = c.updated_at
        actual = {key: value for key, value in changes.items() if before[key] != value}
        if not actual:
            return []
        for key, value in actual.items():
            setattr(c, key, value)
        c.updated_at = max(now(), previous_updated + 1e-6)
        changed = [
            {
                _attr_name(key): {
                    "previous_value": _attr_value(key, before[key]),
                    "current_value": _attr_value(key, value),
                }
            }
            for key, value in actual.items()
        ]
        changed.append({"updated_at": {"previous_value": iso(previous_updated), "current_value": iso(c.updated_at)}})
        if "status" in actual:
            # §0.10: status_changed carries changed_attributes null; conversation_updated has them.
            self.emit(Event("conversation_status_changed", c.inbox_id, "conversation", c.display_id, None, True))
        if any(_attr_name(key) in TRACKED_CONVERSATION_KEYS for key in actual):
            self.emit(Event("conversation_updated", c.inbox_id, "conversation", c.display_id, changed, True))
        self._changed()
        return changed

    def set_status(
        self, c: Conversation, status: str | None, snoozed_until: Any = None, *, by_user: bool = True
    ) -> bool:
        """toggle_status (§1.3); without ``status`` it toggles open <-> resolved. True if it changed."""
        with self.lock:
            if status in (None, ""):
                status = "resolved" if c.status == "open" else "open"
            if status not in CONVERSATION_STATUSES:
                raise errors.unprocessable(f"'{status}' is not a valid status")
            changes: dict[str, Any] = {"status": status}
            changes["snoozed_until"] = _unix_param(snoozed_until) if status == "snoozed" else None
            if status == "open" and by_user and self.user.role != "administrator":
                # §1.3: an agent (not an administrator) reopening gets the conversation assigned.
                changes["assignee_id"] = self.user.id
            was = c.status
            self._conversation_update(c, changes)
            if was != c.status:
                self._activity(c, _STATUS_ACTIVITY[c.status].format(name=self.user.name))
                return True
            return False

    def set_custom_attributes(self, c: Conversation, attributes: Mapping[str, Any]) -> None:
        """POST /conversations/{id}/custom_attributes replaces them."""
        with self.lock:
            self._conversation_update(c, {"custom_attributes": dict(attributes)})

    def assign(self, c: Conversation, assignee_id: int | None) -> None:
        with self.lock:
            self._conversation_update(c, {"assignee_id": assignee_id})

    def mark_seen_by_agent(self, c: Conversation) -> None:
        with self.lock:
            c.agent_last_seen_at = now()
            if c.assignee_id is not None:
                c.assignee_last_seen_at = c.agent_last_seen_at
            self._changed()

    def typing(self, c: Conversation, on: bool, is_private: bool = False) -> None:
        """An agent types in the dashboard: conversation_typing_on/off (§3.2)."""
        with self.lock:
            event = "conversation_typing_on" if on else "conversation_typing_off"
            self.emit(Event(event, c.inbox_id, "typing", c.display_id, extra={"is_private": is_private}))

    # -- messages ------------------------------------------------------------------------------

    def _check_message(self, c: Conversation | None, params: Mapping[str, Any], files: list[Any]) -> dict[str, Any]:
        """Validate message params; return normalized values. 422 ``{"error": ...}`` on errors (§1.4)."""
        message_type = params.get("message_type", "outgoing")
        if message_type is None:
            message_type = "outgoing"
        if not isinstance(message_type, str) or message_type not in MESSAGE_TYPES:
            raise errors.unprocessable(f"'{message_type}' is not a valid message_type")
        content_type = params.get("content_type") or "text"
        if content_type not in CONTENT_TYPES:
            raise errors.unprocessable(f"'{content_type}' is not a valid content_type")
        content = params.get("content")
        if content is not None and not isinstance(content, str):
            content = json.dumps(content) if isinstance(content, (dict, list)) else str(content)
        if content is not None and len(content) > MAX_CONTENT:
            raise errors.unprocessable(f"Validation failed: Content is too long (maximum is {MAX_CONTENT} characters)")
        raw_attributes = params.get("content_attributes")
        if isinstance(raw_attributes, str):
            try:
                raw_attributes = json.loads(raw_attributes) if raw_attributes.strip() else {}
            except ValueError as exc:
                raise errors.unprocessable(f"unexpected token in content_attributes: {exc}")
        content_attributes = dict(raw_attributes) if isinstance(raw_attributes, Mapping) else {}
        json_attachments = params.get("attachments")
        count = len(files) + (len(json_attachments) if isinstance(json_attachments, list) else 0)
        if count > MAX_ATTACHMENTS:
            raise errors.unprocessable("Validation failed: Attachments exceeded maximum allowed")
        if isinstance(json_attachments, list) and json_attachments:
            # Only ActiveStorage signed ids go here upstream; the emulator has none to resolve.
            raise errors.unprocessable("ActiveSupport::MessageVerifier::InvalidSignature")
        if c is not None and self.flood_limit is not None:
            recent = [m for m in self.messages_of(c.display_id) if m.created_at >= now() - 60]
            if len(recent) >= self.flood_limit:
                raise errors.unprocessable("Validation failed: Too many messages")  # §4.1
        if c is not None and "in_reply_to" in content_attributes:
            target = self.messages.get(to_int(content_attributes["in_reply_to"]) or -1)
            if target is not None and target.source_id:
                content_attributes.setdefault("in_reply_to_external_id", target.source_id)
        if params.get("external_created_at") not in (None, ""):
            content_attributes["external_created_at"] = params["external_created_at"]
        additional: dict[str, Any] = {}
        if isinstance(params.get("template_params"), Mapping):
            additional["template_params"] = dict(params["template_params"])
        source_id = params.get("source_id")
        return {
            "message_type": MESSAGE_TYPES[message_type],
            "content_type": content_type,
            "content": content,
            "content_attributes": content_attributes,
            "additional_attributes": additional,
            "private": to_bool(params.get("private")),
            "source_id": None if source_id in (None, "") else str(source_id),
        }

    def create_message(
        self, c: Conversation, params: Mapping[str, Any], files: list[tuple[str, str, bytes]]
    ) -> Message:
        """POST /conversations/{id}/messages; ``files`` are (filename, mime type, bytes)."""
        with self.lock:
            values = self._check_message(c, params, files)
            message_type = values["message_type"]
            incoming = message_type == 0
            if incoming:
                sender_type, sender_id = "Contact", c.contact_id
            elif message_type == 2:
                sender_type, sender_id = None, None
            else:
                sender_type, sender_id = "User", self.user.id
            created = now()
            message = Message(
                id=self._next("message"),
                conversation_id=c.display_id,
                inbox_id=c.inbox_id,
                sender_type=sender_type,
                sender_id=sender_id,
                created_at=created,
                updated_at=created,
                **values,
            )
            for filename, mime, data in files:
                message.attachments.append(
                    Attachment(
                        id=self._next("attachment"),
                        message_id=message.id,
                        filename=filename,
                        content_type=mime,
                        data=data,
                    )
                )
            self._store_message(c, message)
            return message

    def _store_message(self, c: Conversation, message: Message) -> None:
        self.messages[message.id] = message
        self._conversation_messages[c.display_id].append(message.id)
        self._changed()
        if message.message_type == 2:
            return
        incoming = message.message_type == 0
        if incoming and c.status in ("resolved", "snoozed"):
            # Message#reopen_conversation: a new incoming message reopens the conversation.
            self._conversation_update(c, {"status": "open", "snoozed_until": None})
            self._activity(c, _AUTO_REOPEN_ACTIVITY)
        c.last_activity_at = message.created_at  # update_columns: no callbacks, no event
        c.updated_at = max(now(), c.updated_at + 1e-6)  # belongs_to :conversation, touch: true
        if incoming:
            self.contacts[c.contact_id].last_activity_at = message.created_at
        # MESSAGE_CREATED goes out for incoming/outgoing/template, private notes included (§3.2).
        self.emit(Event("message_created", message.inbox_id, "message", message.id))
        changes: dict[str, Any] = {}
        human_reply = message.message_type == 1 and message.sender_type == "User" and not message.private
        if incoming and c.waiting_since is None:
            changes["waiting_since"] = message.created_at
        if human_reply:
            if c.first_reply_created_at is None:
                changes["first_reply_created_at"] = message.created_at
            if c.waiting_since is not None:
                changes["waiting_since"] = None
        if changes:
            self._conversation_update(c, changes)

    def _activity(self, c: Conversation, content: str) -> Message:
        created = now()
        message = Message(
            id=self._next("message"),
            conversation_id=c.display_id,
            inbox_id=c.inbox_id,
            content=content,
            message_type=2,
            sender_type=None,
            sender_id=None,
            created_at=created,
            updated_at=created,
        )
        self._store_message(c, message)
        return message

    def _message_changed(self, m: Message) -> None:
        m.updated_at = max(now(), m.updated_at + 1e-6)
        self._changed()
        if m.message_type != 2:
            self.emit(Event("message_updated", m.inbox_id, "message", m.id))

    def update_message_status(self, m: Message, status: Any, external_error: Any) -> Message:
        """PATCH .../messages/{id} (§1.4): status only; ``read -> delivered`` is ignored."""
        with self.lock:
            if status not in MESSAGE_STATUSES:
                raise errors.unprocessable(f"'{status}' is not a valid status")
            if m.status == "read" and status == "delivered":
                return m
            changed = m.status != status
            m.status = status
            if status == "failed" and external_error not in (None, ""):
                if m.content_attributes.get("external_error") != str(external_error):
                    m.content_attributes["external_error"] = str(external_error)
                    changed = True
            if changed:
                self._message_changed(m)
            return m

    def delete_message(self, m: Message) -> Message:
        """DELETE .../messages/{id}: a soft delete that fires message_updated (§1.4)."""
        with self.lock:
            m.content = DELETED_CONTENT
            m.content_type = "text"
            m.content_attributes = {"deleted": True}
            m.attachments = []
            self._message_changed(m)
            return m

    def mark_delivery_failed(self, message_id: int, error: str) -> bool:
        """§3.4: a failed message_created/updated delivery marks the message failed. True if changed."""
        with self.lock:
            m = self.messages.get(message_id)
            if m is None:
                return False
            if m.status == "failed" and m.content_attributes.get("external_error") == error:
                return False  # no change, no new message_updated (keeps a dead endpoint from looping)
            m.status = "failed"
            m.content_attributes["external_error"] = error
            self._message_changed(m)
            return True


def _mapping(value: Any) -> dict[str, Any]:
    """A permitted ``{}`` param: a hash, else dropped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _unix_param(value: Any) -> float | None:
    """``snoozed_until`` in Unix seconds (DateTime.strptime(v, '%s'))."""
    number = to_int(value)
    if number is None and isinstance(value, float):
        number = int(value)
    return float(number) if number is not None else None


def _attr_name(key: str) -> str:
    return "label_list" if key == "labels" else key


def _attr_value(key: str, value: Any) -> Any:
    if key in _TIME_KEYS and isinstance(value, (int, float)):
        return iso(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value
