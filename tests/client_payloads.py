"""Response bodies shaped as the platform sends them (unilink-api.md §1, §4), for client tests.

Key order and encodings follow the reference: message_type is an int in API responses,
conversation times are Unix ints (updated_at a float), snoozed_until an ISO string or null.
"""

from __future__ import annotations

from typing import Any

ACCOUNT_ID = 1
INBOX_ID = 7
TOKEN = "tok-SECRET-3f9a1c-do-not-leak"

#: Real error bodies (unilink-api.md §1.1, §4.2).
INVALID_TOKEN = {"error": "Invalid Access Token"}
DEVISE_SIGN_IN = {"errors": ["You need to sign in or sign up before continuing."]}
BOT_DENIED = {"error": "Access to this endpoint is not authorized for bots"}
PUNDIT_DENIED = {"error": "You are not authorized to do this action"}
NOT_IN_ACCOUNT = {"error": "You are not authorized to access this account"}
NOT_FOUND = {"error": "Resource could not be found"}
RECORD_INVALID = {"message": "Email has already been taken", "attributes": ["email"]}
PARAM_MISSING = {"error": "param is missing or the value is empty: inbox_id"}
STATUS_ONLY_API = {"error": "Message status update is only allowed for API inboxes"}
PAYMENT_REQUIRED = {"error": "Please upgrade your plan to use this feature"}


def slim_inbox(inbox_id: int = INBOX_ID) -> dict[str, Any]:
    return {
        "id": inbox_id,
        "avatar_url": "",
        "channel_id": 3,
        "name": "UniLink API",
        "channel_type": "Channel::Api",
        "provider": None,
    }


def raw_inbox_record(inbox_id: int = INBOX_ID) -> dict[str, Any]:
    """The raw Inbox record of contact create's contact_inbox (§1.2)."""
    return {
        "id": inbox_id,
        "channel_id": 3,
        "account_id": ACCOUNT_ID,
        "name": "UniLink API",
        "created_at": "2026-06-01T10:00:00.000Z",
        "updated_at": "2026-06-01T10:00:00.000Z",
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


def contact(contact_id: int = 42, *, name: str = "Alice", source_id: str | None = "sess-1", **extra: Any) -> dict:
    body: dict[str, Any] = {
        "additional_attributes": {},
        "availability_status": "offline",
        "email": f"user{contact_id}@example.com",
        "id": contact_id,
        "name": name,
        "phone_number": None,
        "blocked": False,
        "identifier": f"user-{contact_id}",
        "thumbnail": "",
        "custom_attributes": {},
        "last_activity_at": 1781770000,
        "created_at": 1781760000,
        "contact_inboxes": [{"source_id": source_id, "inbox": slim_inbox()}] if source_id else [],
    }
    body.update(extra)
    return body


def message(message_id: int, conversation_id: int = 12, *, message_type: int = 0, **extra: Any) -> dict:
    body: dict[str, Any] = {
        "id": message_id,
        "content": f"message {message_id}",
        "inbox_id": INBOX_ID,
        "conversation_id": conversation_id,
        "message_type": message_type,
        "content_type": "text",
        "status": "sent",
        "content_attributes": {},
        "created_at": 1781770000 + message_id,
        "private": False,
        "source_id": None,
        "sender": {
            "additional_attributes": {},
            "custom_attributes": {},
            "email": "user42@example.com",
            "id": 42,
            "identifier": "user-42",
            "name": "Alice",
            "phone_number": None,
            "thumbnail": "",
            "blocked": False,
            "type": "contact",
        },
    }
    body.update(extra)
    return body


def conversation(display_id: int = 12, *, status: str = "open", **extra: Any) -> dict:
    body: dict[str, Any] = {
        "meta": {
            "sender": {k: v for k, v in contact().items() if k != "contact_inboxes"},
            "channel": "Channel::Api",
            "hmac_verified": False,
        },
        "id": display_id,
        "messages": [message(100 + display_id, display_id)],
        "account_id": ACCOUNT_ID,
        "uuid": "3c1f9f0e-6a57-4c53-9b7a-2f4c1d6e8a90",
        "additional_attributes": {},
        "agent_last_seen_at": 0,
        "assignee_last_seen_at": 0,
        "can_reply": True,
        "contact_last_seen_at": 0,
        "custom_attributes": {"thread": "t-1"},
        "inbox_id": INBOX_ID,
        "labels": [],
        "muted": False,
        "snoozed_until": None,
        "status": status,
        "created_at": 1781760000,
        "updated_at": 1781770000.123456,
        "timestamp": 1781770000,
        "first_reply_created_at": 0,
        "unread_count": 1,
        "last_non_activity_message": None,
        "last_activity_at": 1781770000,
        "priority": None,
        "waiting_since": 1781770000,
        "sla_policy_id": None,
    }
    body.update(extra)
    return body


def api_inbox(inbox_id: int = INBOX_ID, **extra: Any) -> dict:
    """GET /inboxes/{id} of an API channel seen by an administrator (§1.5)."""
    body: dict[str, Any] = {
        "id": inbox_id,
        "avatar_url": "",
        "channel_id": 3,
        "name": "UniLink API",
        "channel_type": "Channel::Api",
        "greeting_enabled": False,
        "greeting_message": None,
        "working_hours_enabled": False,
        "enable_email_collect": True,
        "csat_survey_enabled": False,
        "enable_auto_assignment": True,
        "auto_assignment_config": {},
        "out_of_office_message": None,
        "working_hours": [],
        "timezone": "UTC",
        "allow_messages_after_resolved": True,
        "lock_to_single_conversation": False,
        "sender_name_type": "friendly",
        "business_name": None,
        "webhook_url": "https://shop.example.com/unilink/webhook/default/",
        "inbox_identifier": "x9Fq2kLmNpQr7sTu",
        "additional_attributes": {},
        "hmac_mandatory": False,
        "hmac_token": "hmac-token-value",
        "secret": "channel-signing-secret",
    }
    body.update(extra)
    return body


def profile(role: str = "administrator", account_id: int = ACCOUNT_ID) -> dict:
    """GET /api/v1/profile (it carries the token itself, as the platform's does)."""
    return {
        "id": 3,
        "access_token": TOKEN,
        "account_id": account_id,
        "available_name": "Ops",
        "avatar_url": "",
        "confirmed": True,
        "display_name": None,
        "message_signature": None,
        "email": "ops@example.com",
        "name": "Ops",
        "provider": "email",
        "pubsub_token": "pubsub",
        "role": role,
        "ui_settings": {},
        "uid": "ops@example.com",
        "type": None,
        "accounts": [{"id": account_id, "name": "Acme Support", "status": "active", "role": role}],
    }
