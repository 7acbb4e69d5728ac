"""Remote JSON -> model field values, for every shape the platform sends.

The same object arrives in several shapes (API response, webhook top level, nested
``push_event_data``; unilink-api.md §2.2–§3.3). These functions accept all of them and return
plain dicts of model field values, so the outbox (API responses), the webhook processor and
the catch-up sync all map data the same way. They never touch the database.
"""

from __future__ import annotations

from typing import Any

from .encoding import CONVERSATION_STATUSES, enum_name, message_type_name, parse_timestamp


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    return int(value)


def contact_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Fields of :class:`~django_unilink.models.Contact` from any contact shape."""
    return {
        "remote_id": _int_or_none(data.get("id")),
        "name": _str(data.get("name"))[:255],
        "email": _str(data.get("email"))[:255],
        "phone_number": _str(data.get("phone_number"))[:255],
        "identifier": _str(data.get("identifier"))[:255],
        "custom_attributes": _dict(data.get("custom_attributes")),
        "additional_attributes": _dict(data.get("additional_attributes")),
        "raw": data,
    }


def conversation_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Fields of :class:`~django_unilink.models.Conversation` (``id`` is the display id)."""
    meta = _dict(data.get("meta"))
    assignee = meta.get("assignee") if isinstance(meta.get("assignee"), dict) else None
    status = data.get("status")
    fields: dict[str, Any] = {
        "remote_id": _int_or_none(data.get("id")),
        "uuid": data.get("uuid") or None,
        "status": enum_name(status, CONVERSATION_STATUSES, field="status") if status is not None else "open",
        "priority": _str(data.get("priority")),
        "assignee_remote_id": _int_or_none(assignee.get("id")) if assignee else None,
        "assignee_type": _str(meta.get("assignee_type")) if assignee else "",
        "assignee_name": _str((assignee or {}).get("available_name") or (assignee or {}).get("name"))[:255],
        "labels": list(data.get("labels") or []),
        "custom_attributes": _dict(data.get("custom_attributes")),
        "additional_attributes": _dict(data.get("additional_attributes")),
        "snoozed_until": parse_timestamp(data.get("snoozed_until"), field="snoozed_until"),
        "created_at": parse_timestamp(data.get("created_at"), field="created_at"),
        "updated_at": parse_timestamp(data.get("updated_at"), field="updated_at"),
        "last_activity_at": parse_timestamp(
            data.get("last_activity_at", data.get("timestamp")), field="last_activity_at"
        ),
        "raw": data,
    }
    return fields


def sender_fields(sender: Any) -> dict[str, Any]:
    """``sender_type``/``sender_remote_id``/``sender_name`` from any sender shape.

    A contact sender in a webhook has no ``type`` key (unilink-api.md §0.9); it is
    recognised by its contact-only keys.
    """
    if not isinstance(sender, dict):
        return {"sender_type": "", "sender_remote_id": None, "sender_name": ""}
    kind = sender.get("type")
    if not kind:
        kind = (
            "contact"
            if ("identifier" in sender or "phone_number" in sender or "additional_attributes" in sender)
            else ""
        )
    return {
        "sender_type": _str(kind),
        "sender_remote_id": _int_or_none(sender.get("id")),
        "sender_name": _str(sender.get("available_name") or sender.get("name"))[:255],
    }


def message_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Fields of :class:`~django_unilink.models.Message` from a webhook, API or nested message.

    ``status`` is absent from top-level webhook messages: it is left out of the result then,
    so a webhook never erases a known status.
    """
    fields: dict[str, Any] = {
        "remote_id": _int_or_none(data.get("id")),
        "source_id": data.get("source_id") or None,
        "content": _str(data.get("content")),
        "message_type": message_type_name(data.get("message_type", 0)),
        "content_type": _str(data.get("content_type") or "text"),
        "content_attributes": _dict(data.get("content_attributes")),
        "private": bool(data.get("private")),
        "raw": data,
    }
    created = parse_timestamp(data.get("created_at"), field="created_at")
    if created is not None:
        fields["created_at"] = created
    updated = parse_timestamp(data.get("updated_at"), field="updated_at")
    if updated is not None:
        fields["updated_at"] = updated
    if data.get("status") is not None:
        fields["status"] = _str(data.get("status"))
    fields.update(sender_fields(data.get("sender")))
    return fields


def attachment_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Fields of :class:`~django_unilink.models.Attachment` from attachment push data."""
    return {
        "remote_id": _int_or_none(data.get("id")),
        "file_type": _str(data.get("file_type")),
        "mime_type": _str(data.get("content_type"))[:255],
        "extension": _str(data.get("extension"))[:32],
        "data_url": _str(data.get("data_url"))[:2000],
        "thumb_url": _str(data.get("thumb_url"))[:2000],
        "file_size": _int_or_none(data.get("file_size")),
        "raw": data,
    }
