"""JSON shapes of the platform: API partials (§1.2-1.4), push_event_data (§2.4), webhook_data (§3.3).

Key order follows the reference. Each function takes the :class:`~.state.Store` (for lookups)
and a record; callers hold the store lock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .models import MESSAGE_TYPE_NAMES, Attachment, Contact, ContactInbox, Conversation, Inbox, Message, User

if TYPE_CHECKING:
    from .state import Store

UNREAD_CAP = 10  # §1.3 `unread_count`: at most 10 is counted


def dumps(value: Any) -> bytes:
    """Compact JSON as ActiveSupport writes it: UTF-8, ``<``, ``>``, ``&``, U+2028/9 escaped (§3.4)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def iso(value: float | None) -> str | None:
    """ISO-8601 UTC with milliseconds and ``Z``, as Rails' ``as_json`` writes times (§0.2)."""
    if value is None:
        return None
    moment = datetime.fromtimestamp(value, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def unix(value: float | None) -> int:
    """Unix seconds, ``0`` for null (conversation times, §1.3)."""
    return int(value) if value is not None else 0


def ufloat(value: float) -> float:
    """``updated_at.to_f``: a float with microseconds (§0.2)."""
    return round(value, 6)


# -- account / users -------------------------------------------------------------------------


def account_brief(s: Store) -> dict[str, Any]:
    return {"id": s.account_id, "name": s.account_name}


def user_push(u: User) -> dict[str, Any]:
    """User#push_event_data (§2.4)."""
    return {
        "id": u.id,
        "name": u.name,
        "available_name": u.available_name,
        "avatar_url": "",
        "type": "user",
        "availability_status": "online",
        "thumbnail": "",
    }


def user_webhook(u: User) -> dict[str, Any]:
    """User#webhook_data (§2.3)."""
    return {"id": u.id, "name": u.name, "email": u.email, "type": "user"}


def agent_partial(s: Store, u: User) -> dict[str, Any]:
    """The ``api/v1/models/_agent`` partial (conversation ``meta.assignee``, §1.3)."""
    return {
        "id": u.id,
        "account_id": s.account_id,
        "availability_status": "online",
        "auto_offline": True,
        "confirmed": True,
        "email": u.email,
        "provider": "email",
        "available_name": u.available_name,
        "name": u.name,
        "role": u.role,
        "thumbnail": "",
        "custom_role_id": None,
    }


def profile(s: Store) -> dict[str, Any]:
    """GET /api/v1/profile (swagger ``user`` schema)."""
    u = s.user
    return {
        "id": u.id,
        "access_token": s.api_access_token,
        "account_id": s.account_id,
        "available_name": u.available_name,
        "avatar_url": "",
        "confirmed": True,
        "display_name": None,
        "message_signature": None,
        "email": u.email,
        "hmac_identifier": "",
        "inviter_id": None,
        "name": u.name,
        "provider": "email",
        "pubsub_token": u.pubsub_token,
        "role": u.role,
        "ui_settings": {},
        "uid": u.uid,
        "type": "SuperAdmin" if u.role == "administrator" else None,
        "accounts": [
            {
                "id": s.account_id,
                "name": s.account_name,
                "status": "active",
                "active_at": iso(s.started_at),
                "role": u.role,
                "permissions": [u.role],
                "availability": "online",
                "availability_status": "online",
                "auto_offline": True,
                "custom_role_id": None,
                "custom_role": None,
            }
        ],
    }


# -- inboxes -----------------------------------------------------------------------------------


def inbox_slim(i: Inbox) -> dict[str, Any]:
    """``_inbox_slim``: inside contact_inboxes (§1.2)."""
    return {
        "id": i.id,
        "avatar_url": "",
        "channel_id": i.channel_id,
        "name": i.name,
        "channel_type": "Channel::Api",
        "provider": None,
    }


def inbox_record(s: Store, i: Inbox) -> dict[str, Any]:
    """The raw Inbox record ``as_json`` (POST /contacts ``contact_inbox.inbox``, §1.2)."""
    return {
        "id": i.id,
        "channel_id": i.channel_id,
        "account_id": s.account_id,
        "name": i.name,
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "channel_type": "Channel::Api",
        "enable_auto_assignment": True,
        "greeting_enabled": False,
        "greeting_message": None,
        "email_address": None,
        "working_hours_enabled": False,
        "out_of_office_message": None,
        "timezone": "UTC",
        "enable_email_collect": True,
        "csat_survey_enabled": False,
        "allow_messages_after_resolved": True,
        "auto_assignment_config": {},
        "lock_to_single_conversation": False,
        "portal_id": None,
        "sender_name_type": "friendly",
        "business_name": None,
        "csat_config": {},
    }


def inbox_json(s: Store, i: Inbox) -> dict[str, Any]:
    """GET /inboxes/{id}; ``hmac_token`` and ``secret`` for administrators only (§1.5)."""
    data: dict[str, Any] = {
        "id": i.id,
        "avatar_url": "",
        "channel_id": i.channel_id,
        "name": i.name,
        "channel_type": "Channel::Api",
        "greeting_enabled": False,
        "greeting_message": None,
        "working_hours_enabled": False,
        "enable_email_collect": True,
        "csat_survey_enabled": False,
        "csat_config": {},
        "enable_auto_assignment": True,
        "auto_assignment_config": {},
        "out_of_office_message": None,
        "working_hours": [],
        "timezone": "UTC",
        "callback_webhook_url": None,
        "allow_messages_after_resolved": True,
        "lock_to_single_conversation": False,
        "sender_name_type": "friendly",
        "business_name": None,
        "webhook_url": i.webhook_url or "",
        "inbox_identifier": i.identifier,
        "additional_attributes": dict(i.additional_attributes),
        "hmac_mandatory": i.hmac_mandatory,
    }
    if s.admin:
        data["hmac_token"] = i.hmac_token
        data["secret"] = i.secret
    return data


# -- contacts ----------------------------------------------------------------------------------


def contact_json(s: Store, c: Contact, *, with_contact_inboxes: bool = True) -> dict[str, Any]:
    """The ``_contact`` partial (§1.2)."""
    data: dict[str, Any] = {
        "additional_attributes": dict(c.additional_attributes),
        "availability_status": "offline",
        "email": c.email,
        "id": c.id,
        "name": c.name,
        "phone_number": c.phone_number,
        "blocked": c.blocked,
        "identifier": c.identifier,
        "thumbnail": c.avatar_url,
        "custom_attributes": dict(c.custom_attributes),
    }
    if c.last_activity_at is not None:
        data["last_activity_at"] = int(c.last_activity_at)
    data["created_at"] = int(c.created_at)
    if with_contact_inboxes:
        data["contact_inboxes"] = [
            {"source_id": ci.source_id, "inbox": inbox_slim(s.inboxes[ci.inbox_id])}
            for ci in s.contact_inboxes_of(c.id)
        ]
    return data


def contact_push(c: Contact) -> dict[str, Any]:
    """Contact#push_event_data (§2.4): with ``type: "contact"``."""
    return {
        "additional_attributes": dict(c.additional_attributes),
        "custom_attributes": dict(c.custom_attributes),
        "email": c.email,
        "id": c.id,
        "identifier": c.identifier,
        "name": c.name,
        "phone_number": c.phone_number,
        "thumbnail": c.avatar_url,
        "blocked": c.blocked,
        "type": "contact",
    }


def contact_webhook(s: Store, c: Contact) -> dict[str, Any]:
    """Contact#webhook_data (§2.3): **no** ``type`` key (removed upstream in PR #6415)."""
    return {
        "account": account_brief(s),
        "additional_attributes": dict(c.additional_attributes),
        "avatar": c.avatar_url,
        "custom_attributes": dict(c.custom_attributes),
        "email": c.email,
        "id": c.id,
        "identifier": c.identifier,
        "name": c.name,
        "phone_number": c.phone_number,
        "thumbnail": c.avatar_url,
        "blocked": c.blocked,
    }


def contact_inbox_record(ci: ContactInbox) -> dict[str, Any]:
    """The raw ContactInbox record (conversation webhook_data ``contact_inbox``, §3.3)."""
    return {
        "id": ci.id,
        "contact_id": ci.contact_id,
        "inbox_id": ci.inbox_id,
        "source_id": ci.source_id,
        "created_at": iso(ci.created_at),
        "updated_at": iso(ci.updated_at),
        "hmac_verified": ci.hmac_verified,
        "pubsub_token": ci.pubsub_token,
    }


# -- messages ----------------------------------------------------------------------------------


def attachment_push(s: Store, a: Attachment) -> dict[str, Any]:
    """Attachment#push_event_data for a file (§2.4); ``data_url`` is served by the emulator."""
    data: dict[str, Any] = {
        "id": a.id,
        "message_id": a.message_id,
        "file_type": a.file_type,
        "account_id": s.account_id,
        "extension": a.extension,
        "content_type": a.content_type,
        "data_url": f"{s.base_url}/rails/active_storage/blobs/redirect/{a.id}/{a.filename}",
        "thumb_url": (
            f"{s.base_url}/rails/active_storage/representations/redirect/{a.id}/{a.filename}"
            if a.file_type == "image"
            else ""
        ),
        "file_size": len(a.data),
        "width": None,  # §2.4: null until ActiveStorage has analyzed the file
        "height": None,
    }
    if a.file_type == "audio":
        data["transcribed_text"] = ""
    return data


def _sender(s: Store, m: Message) -> User | Contact | None:
    if m.sender_type == "Contact" and m.sender_id is not None:
        return s.contacts.get(m.sender_id)
    if m.sender_type == "User":
        return s.user
    return None


def _sender_push(s: Store, m: Message) -> dict[str, Any] | None:
    sender = _sender(s, m)
    if sender is None:
        return None
    return user_push(sender) if isinstance(sender, User) else contact_push(sender)


def normalize_webhook_content(content: str | None) -> str | None:
    """§2.4: in webhooks a backslash + newline becomes a newline; trailing newlines are stripped."""
    if content is None:
        return None
    return content.replace("\\\n", "\n").rstrip("\n")


def message_api(s: Store, m: Message, *, echo_id: str | None = None) -> dict[str, Any]:
    """The ``_message`` API partial (§1.4): integer ``message_type``, Unix ``created_at``."""
    data: dict[str, Any] = {"id": m.id, "content": m.content, "inbox_id": m.inbox_id}
    if echo_id is not None:
        data["echo_id"] = echo_id  # transient: only in this response, never stored (§1.4)
    data.update(
        {
            "conversation_id": m.conversation_id,
            "message_type": m.message_type,
            "content_type": m.content_type,
            "status": m.status,
            "content_attributes": dict(m.content_attributes),
            "created_at": int(m.created_at),
            "private": m.private,
            "source_id": m.source_id,
        }
    )
    sender = _sender_push(s, m)
    if sender is not None:
        data["sender"] = sender
    if m.attachments:
        data["attachments"] = [attachment_push(s, a) for a in m.attachments]
    return data


def message_push(s: Store, m: Message, *, webhook: bool = False) -> dict[str, Any]:
    """Message#push_event_data (§2.4); ``webhook=True`` is ``webhook_push_event_data``."""
    conversation = s.conversations[m.conversation_id]
    content = normalize_webhook_content(m.content) if webhook else m.content
    data: dict[str, Any] = {
        "id": m.id,
        "content": content,
        "account_id": s.account_id,
        "inbox_id": m.inbox_id,
        "conversation_id": m.conversation_id,
        "message_type": m.message_type,
        "created_at": int(m.created_at),
        "updated_at": iso(m.updated_at),
        "private": m.private,
        "status": m.status,
        "source_id": m.source_id,
        "content_type": m.content_type,
        "content_attributes": dict(m.content_attributes),
        "sender_type": m.sender_type,
        "sender_id": m.sender_id,
        "external_source_ids": dict(m.external_source_ids),
        "additional_attributes": dict(m.additional_attributes),
        "processed_message_content": content,
        "sentiment": {},
        "conversation": {
            "assignee_id": conversation.assignee_id,
            "unread_count": s.unread_count(conversation),
            "last_activity_at": int(conversation.last_activity_at),
            "contact_inbox": {"source_id": s.contact_inboxes[conversation.contact_inbox_id].source_id},
        },
    }
    if m.attachments:
        data["attachments"] = [attachment_push(s, a) for a in m.attachments]
    sender = _sender_push(s, m)
    if sender is not None:
        data["sender"] = sender
    return data


def message_webhook(s: Store, m: Message) -> dict[str, Any]:
    """Message#webhook_data (§3.3): string ``message_type``, ISO ``created_at``, no ``status``."""
    inbox = s.inboxes[m.inbox_id]
    sender = _sender(s, m)
    sender_data: dict[str, Any] | None
    if sender is None:
        sender_data = None
    elif isinstance(sender, User):
        sender_data = user_webhook(sender)
    else:
        sender_data = contact_webhook(s, sender)
    data: dict[str, Any] = {
        "account": account_brief(s),
        "additional_attributes": dict(m.additional_attributes),
        "content_attributes": dict(m.content_attributes),
        "content_type": m.content_type,
        "content": normalize_webhook_content(m.content),
        "conversation": conversation_webhook(s, s.conversations[m.conversation_id]),
        "created_at": iso(m.created_at),
        "id": m.id,
        "inbox": {"id": inbox.id, "name": inbox.name},
        "message_type": MESSAGE_TYPE_NAMES[m.message_type],
        "private": m.private,
        "sender": sender_data,
        "source_id": m.source_id,
    }
    if m.attachments:
        data["attachments"] = [attachment_push(s, a) for a in m.attachments]
    return data


# -- conversations -----------------------------------------------------------------------------


def conversation_api(s: Store, c: Conversation) -> dict[str, Any]:
    """The ``_conversation`` partial (§1.3): the bare object of POST/GET and list items."""
    contact = s.contacts[c.contact_id]
    contact_inbox = s.contact_inboxes[c.contact_inbox_id]
    meta: dict[str, Any] = {
        "sender": contact_json(s, contact, with_contact_inboxes=False),
        "channel": "Channel::Api",
    }
    if c.assignee_id is not None:
        meta["assignee"] = agent_partial(s, s.user)
        meta["assignee_type"] = "User"
    meta["hmac_verified"] = contact_inbox.hmac_verified
    messages = s.messages_of(c.display_id)
    non_activity = [m for m in messages if m.message_type != 2]
    return {
        "meta": meta,
        "id": c.display_id,
        "messages": [message_push(s, messages[-1])] if messages else [],
        "account_id": s.account_id,
        "uuid": c.uuid,
        "additional_attributes": dict(c.additional_attributes),
        "agent_last_seen_at": unix(c.agent_last_seen_at),
        "assignee_last_seen_at": unix(c.assignee_last_seen_at),
        "can_reply": True,
        "contact_last_seen_at": unix(c.contact_last_seen_at),
        "custom_attributes": dict(c.custom_attributes),
        "inbox_id": c.inbox_id,
        "labels": list(c.labels),
        "muted": c.muted,
        "snoozed_until": iso(c.snoozed_until),
        "status": c.status,
        "created_at": int(c.created_at),
        "updated_at": ufloat(c.updated_at),
        "timestamp": int(c.last_activity_at),
        "first_reply_created_at": unix(c.first_reply_created_at),
        "unread_count": s.unread_count(c),
        "last_non_activity_message": message_push(s, non_activity[-1]) if non_activity else None,
        "last_activity_at": int(c.last_activity_at),
        "priority": c.priority,
        "waiting_since": unix(c.waiting_since),
        "sla_policy_id": None,
    }


def conversation_webhook(s: Store, c: Conversation) -> dict[str, Any]:
    """Conversations::EventDataPresenter#webhook_data (§3.3)."""
    contact = s.contacts[c.contact_id]
    contact_inbox = s.contact_inboxes[c.contact_inbox_id]
    visible = [m for m in s.messages_of(c.display_id) if m.message_type != 2 and not m.private]
    assigned = c.assignee_id is not None
    return {
        "additional_attributes": dict(c.additional_attributes),
        "can_reply": True,
        "channel": "Channel::Api",
        "contact_inbox": contact_inbox_record(contact_inbox),
        "id": c.display_id,
        "inbox_id": c.inbox_id,
        "messages": [message_push(s, visible[-1], webhook=True)] if visible else [],
        "labels": list(c.labels),
        "meta": {
            "sender": contact_push(contact),
            "assignee": user_push(s.user) if assigned else None,
            "assignee_type": "User" if assigned else None,
            "team": None,
            "hmac_verified": contact_inbox.hmac_verified,
        },
        "status": c.status,
        "custom_attributes": dict(c.custom_attributes),
        "snoozed_until": iso(c.snoozed_until),
        "unread_count": s.unread_count(c),
        "first_reply_created_at": iso(c.first_reply_created_at),
        "priority": c.priority,
        "waiting_since": unix(c.waiting_since),
        "agent_last_seen_at": unix(c.agent_last_seen_at),
        "contact_last_seen_at": unix(c.contact_last_seen_at),
        "last_activity_at": int(c.last_activity_at),
        "timestamp": int(c.last_activity_at),
        "created_at": int(c.created_at),
        "updated_at": ufloat(c.updated_at),
        "account": account_brief(s),  # added in 4.14.2 (PR #12445)
    }


def messages_meta(s: Store, c: Conversation) -> dict[str, Any]:
    """``meta`` of GET /conversations/{id}/messages (§1.4)."""
    meta: dict[str, Any] = {
        "labels": list(c.labels),
        "additional_attributes": dict(c.additional_attributes),
        "contact": contact_push(s.contacts[c.contact_id]),
    }
    if c.assignee_id is not None:
        meta["assignee"] = user_push(s.user)
    meta["agent_last_seen_at"] = iso(c.agent_last_seen_at)
    meta["assignee_last_seen_at"] = iso(c.assignee_last_seen_at)
    return meta
