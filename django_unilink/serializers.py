"""DRF serializers that validate webhook payloads before anything is stored from them.

They check the *types and bounds* of every field the processing reads (so bad input gets a 400
naming the field, never a 500 or a half-written row), decoding enums and times with the same
functions as :mod:`django_unilink.mapping`, which does the mapping to model fields. Unknown keys
are allowed: a newer platform may add some.
Fields are strict: ``"12"`` is not an integer and ``1`` is not a string, as the platform never
sends those.
"""

from __future__ import annotations

import threading
from typing import Any

from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from .encoding import CONVERSATION_STATUSES, MESSAGE_TYPES, enum_name, parse_timestamp

# Bounds of the database columns the values end up in (see models.py).
INT32_MAX = 2**31 - 1
INT63_MAX = 2**63 - 1


class StrictIntegerField(serializers.IntegerField):
    """An integer that is a JSON number without a fraction, not a string or a boolean."""

    default_error_messages = {"invalid": "Expected an integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            if isinstance(data, float) and data.is_integer():
                data = int(data)
            else:
                self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string (kept as sent: no whitespace trimming)."""

    default_error_messages = {"invalid": "Expected a string."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """``true``/``false`` only."""

    default_error_messages = {"invalid": "Expected true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class EnumField(serializers.Field):
    """An enum sent as its name (string) or its integer code, as the platform mixes both.

    Decoded with :func:`~django_unilink.encoding.enum_name`, as the mapping does: an integer must
    be a known code; an unknown name is accepted (a newer platform may add some).
    """

    default_error_messages = {"invalid": "Expected a name or an integer code."}

    def __init__(self, *, names: tuple[str, ...], max_length: int, **kwargs: Any) -> None:
        self.names = names
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > self.max_length:
            raise serializers.ValidationError(f"At most {self.max_length} characters.")
        try:
            return enum_name(data, self.names)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc).partition(": ")[2] or str(exc)) from None

    def to_representation(self, value: Any) -> Any:
        return value


class TimestampField(serializers.Field):
    """Any of the platform's time encodings: ISO string, Unix int or float, ``0``/null for none."""

    default_error_messages = {"invalid": "Expected an ISO-8601 date and time or Unix seconds."}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            self.fail("invalid")
        try:
            parse_timestamp(data, field=self.field_name or "timestamp")
        except (ValueError, OverflowError):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class JSONObjectField(serializers.DictField):
    """A JSON object of anything."""

    default_error_messages = {"not_a_dict": "Expected a JSON object."}


#: Most platform keys may be absent or null. (Passed as kwargs: DRF rebuilds fields from them.)
OPT: dict[str, Any] = {"required": False, "allow_null": True}


def opt_str(max_length: int | None = None) -> serializers.Field:
    return StrictCharField(max_length=max_length, **OPT)


def opt_int(max_value: int = INT63_MAX) -> serializers.Field:
    return StrictIntegerField(min_value=0, max_value=max_value, **OPT)


_built = threading.local()


class Payload(serializers.Serializer):
    """Base: validates only; ``create``/``update`` are never used."""

    @property
    def fields(self) -> BindingDict:  # type: ignore[override]
        # Why: DRF deep-copies and binds every declared field (nested ones included) for every
        # instance: two thirds of a webhook's validation time. Bound fields keep no state while
        # validating (no defaults, no context, never partial), so each thread builds them once
        # per class and reuses them.
        cache = _built.__dict__.setdefault("fields", {})
        fields = cache.get(type(self))
        if fields is None:
            fields = BindingDict(self)
            for name, field in self.get_fields().items():
                fields[name] = field
            cache[type(self)] = fields
        return fields

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - not used
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover - not used
        raise NotImplementedError


class IdOnly(Payload):
    """``{"id": <int>, ...}`` such as ``account`` and ``inbox``."""

    id = StrictIntegerField(min_value=1, max_value=INT63_MAX)


class ContactPayload(Payload):
    """A contact: push data (``meta.sender``) or webhook data (a message's contact sender)."""

    id = StrictIntegerField(min_value=1, max_value=INT63_MAX)
    name = opt_str()
    email = opt_str()
    phone_number = opt_str()
    identifier = opt_str()
    custom_attributes = JSONObjectField(**OPT)
    additional_attributes = JSONObjectField(**OPT)


class PersonPayload(Payload):
    """A message ``sender`` or typing ``user``: a contact, user, agent bot or assistant."""

    id = StrictIntegerField(min_value=0, max_value=INT63_MAX, **OPT)
    type = opt_str(32)
    name = opt_str()
    available_name = opt_str()
    custom_attributes = JSONObjectField(**OPT)
    additional_attributes = JSONObjectField(**OPT)


class ContactInboxPayload(Payload):
    """``conversation.contact_inbox``: the raw ContactInbox record."""

    id = opt_int()
    contact_id = opt_int()
    source_id = StrictCharField(max_length=255, allow_blank=False)
    hmac_verified = StrictBooleanField(**OPT)


class AssigneePayload(Payload):
    id = StrictIntegerField(min_value=0, max_value=INT63_MAX, **OPT)
    name = opt_str()
    available_name = opt_str()


class ConversationMetaPayload(Payload):
    sender = ContactPayload(**OPT)
    assignee = AssigneePayload(**OPT)
    assignee_type = opt_str(32)


class NestedMessagePayload(Payload):
    """An entry of ``conversation.messages[]`` (push data): only what the processing reads."""

    id = StrictIntegerField(min_value=1, max_value=INT63_MAX)
    status = opt_str(16)
    updated_at = TimestampField(**OPT)
    created_at = TimestampField(**OPT)
    source_id = opt_str(255)
    message_type = EnumField(names=MESSAGE_TYPES, max_length=16, **OPT)
    conversation = JSONObjectField(**OPT)

    def validate_conversation(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        contact_inbox = (value or {}).get("contact_inbox")
        if contact_inbox is not None:
            if not isinstance(contact_inbox, dict):
                raise serializers.ValidationError({"contact_inbox": ["Expected a JSON object."]})
            source_id = contact_inbox.get("source_id")
            if source_id is not None and (not isinstance(source_id, str) or len(source_id) > 255):
                raise serializers.ValidationError(
                    {"contact_inbox": {"source_id": ["Expected a string of at most 255 characters."]}}
                )
        return value


class ConversationPayload(Payload):
    """A conversation's webhook data (also the top level of conversation events)."""

    id = StrictIntegerField(min_value=1, max_value=INT32_MAX)
    inbox_id = opt_int()
    uuid = serializers.UUIDField(**OPT)
    status = EnumField(names=CONVERSATION_STATUSES, max_length=16, **OPT)
    priority = opt_str(16)
    contact_inbox = ContactInboxPayload(**OPT)
    meta = ConversationMetaPayload(**OPT)
    messages = NestedMessagePayload(many=True, **OPT)
    labels = serializers.ListField(child=StrictCharField(max_length=255), **OPT)
    custom_attributes = JSONObjectField(**OPT)
    additional_attributes = JSONObjectField(**OPT)
    snoozed_until = TimestampField(**OPT)
    created_at = TimestampField(**OPT)
    updated_at = TimestampField(**OPT)
    last_activity_at = TimestampField(**OPT)
    timestamp = TimestampField(**OPT)
    account = IdOnly(**OPT)


class AttachmentPayload(Payload):
    id = opt_int()
    file_type = opt_str(32)
    content_type = opt_str()
    extension = opt_str()
    data_url = opt_str()
    thumb_url = opt_str()
    file_size = opt_int()


class EventPayload(Payload):
    event = StrictCharField(max_length=100, allow_blank=False)


class MessageEventPayload(EventPayload):
    """``message_created`` / ``message_updated``: the message's webhook data."""

    id = StrictIntegerField(min_value=1, max_value=INT63_MAX)
    content = opt_str()
    content_type = opt_str(32)
    content_attributes = JSONObjectField(**OPT)
    message_type = EnumField(names=MESSAGE_TYPES, max_length=16)
    private = StrictBooleanField(**OPT)
    source_id = opt_str(255)
    created_at = TimestampField(**OPT)
    # Not sent today (unilink-api.md §3.3), but the mapping reads them when present.
    status = opt_str(16)
    updated_at = TimestampField(**OPT)
    sender = PersonPayload(**OPT)
    conversation = ConversationPayload()
    attachments = AttachmentPayload(many=True, **OPT)
    inbox = IdOnly(**OPT)
    account = IdOnly(**OPT)


class ConversationEventPayload(EventPayload, ConversationPayload):
    """``conversation_created`` / ``_updated`` / ``_status_changed``."""

    # A list of {attr: {previous_value, current_value}}; tolerated as a dict, expected null
    # for status changes (unilink-api.md §0.10).
    changed_attributes = serializers.JSONField(**OPT)

    def validate_changed_attributes(self, value: Any) -> Any:
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            return value
        raise serializers.ValidationError("Expected a list of objects, an object, or null.")


class TypingEventPayload(EventPayload):
    """``conversation_typing_on`` / ``_off``."""

    conversation = ConversationPayload()
    user = PersonPayload(**OPT)
    is_private = StrictBooleanField(**OPT)


#: Which serializer validates which event; events not listed are accepted and ignored.
EVENT_SERIALIZERS: dict[str, type[EventPayload]] = {
    "message_created": MessageEventPayload,
    "message_updated": MessageEventPayload,
    "conversation_created": ConversationEventPayload,
    "conversation_updated": ConversationEventPayload,
    "conversation_status_changed": ConversationEventPayload,
    "conversation_typing_on": TypingEventPayload,
    "conversation_typing_off": TypingEventPayload,
}


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as ``{"conversation.meta.sender.id": ["Expected an integer."]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            for path, messages in flatten_errors(value, name).items():
                flat.setdefault(path, []).extend(messages)
    elif isinstance(errors, list):
        if all(not isinstance(item, (dict, list)) for item in errors):
            flat.setdefault(prefix or "payload", []).extend(str(item) for item in errors)
        else:
            for index, item in enumerate(errors):
                if item:
                    flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat.setdefault(prefix or "payload", []).append(str(errors))
    return flat
