"""In-memory records of the emulated platform (one account, its agent, inboxes, contacts, ...).

Times are ``time.time()`` floats; the serializers in :mod:`.shapes` turn them into the mixed
encodings of the real platform (Unix ints, ISO strings with milliseconds, float ``updated_at``).
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ...encoding import CONTENT_TYPES as CONTENT_TYPES  # re-exported for the other emulator modules
from ...encoding import CONVERSATION_STATUSES as CONVERSATION_STATUSES
from ...encoding import MESSAGE_STATUSES as MESSAGE_STATUSES
from ...encoding import MESSAGE_TYPES as _MESSAGE_TYPE_NAMES
from ...encoding import PRIORITIES as PRIORITIES

# unilink-api.md §2.1, from the app's single table of encodings.

MESSAGE_TYPES = {name: code for code, name in enumerate(_MESSAGE_TYPE_NAMES)}
MESSAGE_TYPE_NAMES = dict(enumerate(_MESSAGE_TYPE_NAMES))

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def secure_token(length: int = 24) -> str:
    """A Rails ``has_secure_token`` value: 24 base58 characters (§3.4 "Secret values")."""
    return "".join(secrets.choice(_BASE58) for _ in range(length))


def now() -> float:
    """The current time; one place to read the clock."""
    return time.time()


@dataclass
class User:
    """The agent who owns the access token (and answers in the console)."""

    id: int = 1
    name: str = "Emulator Agent"
    available_name: str = "Emulator Agent"
    email: str = "agent@unilink-emulator.test"
    role: str = "administrator"
    pubsub_token: str = field(default_factory=secure_token)
    uid: str = "agent@unilink-emulator.test"


@dataclass
class Inbox:
    """An API-channel inbox (``Channel::Api``)."""

    id: int
    channel_id: int
    name: str
    webhook_url: str | None
    secret: str
    identifier: str = field(default_factory=secure_token)
    hmac_token: str = field(default_factory=secure_token)
    hmac_mandatory: bool = False
    additional_attributes: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class Contact:
    """A contact of the account."""

    id: int
    name: str
    email: str | None = None
    phone_number: str | None = None
    identifier: str | None = None
    blocked: bool = False
    avatar_url: str = ""
    additional_attributes: dict[str, Any] = field(default_factory=dict)
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    last_activity_at: float | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class ContactInbox:
    """The link of a contact to an inbox, with its ``source_id``."""

    id: int
    contact_id: int
    inbox_id: int
    source_id: str
    hmac_verified: bool = False
    pubsub_token: str = field(default_factory=secure_token)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class Conversation:
    """A conversation; ``display_id`` is the id every API path and payload uses."""

    display_id: int
    inbox_id: int
    contact_id: int
    contact_inbox_id: int
    status: str = "open"
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    assignee_id: int | None = None
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    additional_attributes: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    priority: str | None = None
    snoozed_until: float | None = None
    waiting_since: float | None = None
    first_reply_created_at: float | None = None
    agent_last_seen_at: float | None = None
    assignee_last_seen_at: float | None = None
    contact_last_seen_at: float | None = None
    muted: bool = False
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    last_activity_at: float = field(default_factory=now)


@dataclass
class Attachment:
    """A file attached to a message (its bytes are served back at ``data_url``)."""

    id: int
    message_id: int
    filename: str
    content_type: str
    data: bytes

    @property
    def file_type(self) -> str:
        """image/audio/video/file, derived from the MIME type (§1.4 ``attachments[]``)."""
        major = self.content_type.split("/", 1)[0]
        return major if major in ("image", "audio", "video") else "file"

    @property
    def extension(self) -> str | None:
        return self.filename.rsplit(".", 1)[1] if "." in self.filename else None


@dataclass
class Message:
    """A message; ``conversation_id`` is the conversation's display id."""

    id: int
    conversation_id: int
    inbox_id: int
    content: str | None
    message_type: int
    sender_type: str | None
    sender_id: int | None
    content_type: str = "text"
    status: str = "sent"
    private: bool = False
    source_id: str | None = None
    content_attributes: dict[str, Any] = field(default_factory=dict)
    additional_attributes: dict[str, Any] = field(default_factory=dict)
    external_source_ids: dict[str, Any] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
