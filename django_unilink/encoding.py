"""The platform's mixed encodings, decoded in one place.

UniLink (Chatwoot) writes the same field differently depending on where it appears
(``unilink-api.md`` §0.1–0.2, §2.2): ``message_type`` is a string at the top of a webhook
and an integer in API responses and nested webhook messages; timestamps are ISO strings,
Unix ints, floats, or ``0`` for "never". Everything that reads remote JSON goes through
these functions. Nothing here imports Django, so the client and the emulator use it too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: ``Message.message_type`` (unilink-api.md §2.1).
MESSAGE_TYPES = ("incoming", "outgoing", "activity", "template")
#: ``Message.content_type``.
CONTENT_TYPES = (
    "text",
    "input_text",
    "input_textarea",
    "input_email",
    "input_select",
    "cards",
    "form",
    "article",
    "incoming_email",
    "input_csat",
    "integrations",
    "sticker",
    "voice_call",
)
#: ``Message.status``.
MESSAGE_STATUSES = ("sent", "delivered", "read", "failed")
#: ``Conversation.status``.
CONVERSATION_STATUSES = ("open", "resolved", "pending", "snoozed")
#: ``Conversation.priority``.
PRIORITIES = ("low", "medium", "high", "urgent")
#: ``Attachment.file_type``.
FILE_TYPES = (
    "image",
    "audio",
    "video",
    "file",
    "location",
    "fallback",
    "share",
    "story_mention",
    "contact",
    "ig_reel",
    "ig_post",
    "ig_story",
    "embed",
)


def enum_name(value: Any, names: tuple[str, ...], *, field: str = "value") -> str:
    """Decode an enum that may arrive as its name or its integer index.

    ``enum_name(1, MESSAGE_TYPES) == enum_name("outgoing", MESSAGE_TYPES) == "outgoing"``.
    Unknown names are kept as they are (a newer platform may add some); an integer out of
    range or another type raises ``ValueError`` naming ``field``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a name or an integer, got a boolean")
    if isinstance(value, int):
        if 0 <= value < len(names):
            return names[value]
        raise ValueError(f"{field}: unknown integer code {value} (known: 0..{len(names) - 1})")
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.isdigit():
            return enum_name(int(stripped), names, field=field)
        return stripped
    raise ValueError(f"{field}: expected a name or an integer, got {type(value).__name__}")


def message_type_name(value: Any) -> str:
    """``0``/``"incoming"`` -> ``"incoming"``, and so on."""
    return enum_name(value, MESSAGE_TYPES, field="message_type")


def message_type_code(name: str) -> int:
    """``"outgoing"`` -> ``1``: the integer the API responses use."""
    return MESSAGE_TYPES.index(name)


def parse_timestamp(value: Any, *, field: str = "timestamp") -> dt.datetime | None:
    """Any remote timestamp as an aware UTC datetime, or ``None``.

    Accepts ``None``, ``""`` and ``0`` (the platform's "never"), Unix seconds as int, float or
    digit string, and ISO-8601 strings with or without milliseconds and offset (a naive ISO
    string is taken as UTC, which is what the platform means). Anything else raises
    ``ValueError`` naming ``field``.
    """
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a timestamp, got a boolean")
    if isinstance(value, (int, float)):
        try:
            return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"{field}: {value!r} is out of range for a Unix timestamp") from exc
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return parse_timestamp(int(number) if number.is_integer() else number, field=field)
        try:
            # Python 3.11+ parses every ISO form the platform writes ("Z", milliseconds, offsets).
            parsed = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{field}: {value!r} is not an ISO-8601 date and time or Unix seconds") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    raise ValueError(f"{field}: expected a timestamp, got {type(value).__name__}")


def to_unix(value: dt.datetime | int | float | None) -> int | None:
    """A datetime (or Unix seconds) as the integer Unix seconds the API expects (e.g. ``snoozed_until``)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp())
    return int(value)
