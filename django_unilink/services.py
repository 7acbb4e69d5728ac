"""What host code calls to talk to UniLink: local-first, sent by Celery.

Every function validates its input first (bad input raises
:class:`~django_unilink.exceptions.InvalidInputError`, a ``ValueError``, and nothing is written
or queued), writes rows in one transaction, and returns at once. The API calls happen in the
tasks of :mod:`django_unilink.outbox`, queued when the transaction commits (inside an
``atomic()`` block of yours, only if it commits). See docs/sending.md.

    contact = ensure_contact(identifier=str(user.pk), name=user.get_full_name(), email=user.email, user=user)
    conversation = start_conversation(contact)
    send_message(conversation, "Hello, my order #1234 has not arrived.")
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import IO, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.validators import validate_email
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from . import conf
from .client import MAX_ATTACHMENTS, MAX_CONTENT_LENGTH
from .encoding import CONVERSATION_STATUSES
from .exceptions import ConfigurationError, InvalidInputError, UnknownInboxError
from .models import Attachment, Contact, ContactInbox, Conversation, Inbox, LocalState, Message
from .outbox import CONVERSATION_KEY, enqueue_on_commit, requeue_failed

__all__ = ["ensure_contact", "report_status", "send_message", "set_status", "start_conversation"]

#: ``message_type`` values host code may send.
SENDABLE_MESSAGE_TYPES = ("incoming", "outgoing")
#: Statuses ``report_status`` accepts (what happened to an agent's message on the site).
REPORTABLE_STATUSES = ("delivered", "read", "failed")
#: Longest string the platform stores in a contact's string columns.
MAX_STRING = 255
#: Longest ``external_error`` kept (the platform's text columns take 20,000 characters).
MAX_ERROR_LENGTH = 20_000
#: E.164, as the platform validates phone numbers.
PHONE_RE = re.compile(r"^\+[1-9]\d{1,14}$")

#: One attachment as host code may pass it.
AttachmentInput = File | tuple[str, bytes | IO[bytes]] | tuple[str, bytes | IO[bytes], str]


# -- validation helpers ---------------------------------------------------------------------------


def _inbox(key: str) -> Inbox:
    """The Inbox row of a configured, usable inbox; bad keys are the caller's input error."""
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"inbox must be the key of a configured inbox (a string), not {key!r}.")
    try:
        config = conf.get_inbox_config(key)
    except UnknownInboxError as exc:
        raise InvalidInputError(str(exc)) from None
    _check_config(config)
    return Inbox.objects.for_key(key)


def _check_config(config: conf.InboxConfig) -> None:
    problems = conf.validate_inbox(config)
    if problems:
        raise ConfigurationError(" ".join(f"{message} {hint}" for _, message, hint in problems))


def _sendable_inbox(inbox: Inbox, what: str) -> None:
    """``inbox`` (of a conversation or message) is one this site sends through."""
    try:
        config = conf.get_inbox_config(inbox.key)
    except UnknownInboxError:
        raise InvalidInputError(
            f"{what} belongs to inbox {inbox.key!r}, which is not configured in UNILINK: this site cannot "
            "send through it."
        ) from None
    _check_config(config)
    if conf.as_int(config.inbox_id) != inbox.remote_id:
        raise InvalidInputError(
            f"{what} belongs to UniLink inbox {inbox.remote_id}, but the inbox {inbox.key!r} is now configured "
            f"as inbox {config.inbox_id}: it is a conversation of another inbox."
        )


def _text(value: Any, field: str, *, max_length: int = MAX_STRING) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string, not {type(value).__name__}.")
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInputError(f"{field} is {len(value)} characters long; UniLink accepts at most {max_length}.")
    return value


def _json_dict(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{field} must be a dict, not {type(value).__name__}.")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{field} must contain only JSON values (str, int, float, bool, None, lists, dicts): {exc}."
        )
    return dict(value)


def _saved(instance: Any, model: type[models.Model], name: str) -> Any:
    if not isinstance(instance, model):
        raise InvalidInputError(f"{name} must be a {model.__name__} instance, not {type(instance).__name__}.")
    if instance.pk is None:
        raise InvalidInputError(f"{name} has not been saved.")
    return instance


# -- contacts ---------------------------------------------------------------------------------------


def ensure_contact(
    *,
    inbox: str = conf.DEFAULT_INBOX,
    identifier: str | None = None,
    name: str | None = None,
    email: str | None = None,
    phone_number: str | None = None,
    custom_attributes: Mapping[str, Any] | None = None,
    user: models.Model | None = None,
) -> Contact:
    """The contact for a person, created locally (and then on UniLink) when it does not exist.

    Idempotent for the same ``identifier`` (your own id for the person, unique per account), or,
    without one, for the same linked ``user`` (any saved model instance). Without either, every
    call creates a new contact. An existing contact is returned as it is, except that a contact
    that is not on UniLink yet takes the new values, and a contact that failed is queued again.

    The task creates the remote contact with the inbox id and this site's ``source_id`` (so
    its contact inbox exists at once); when UniLink already has a contact with the same
    identifier, email or phone number, that one is found and linked instead.
    """
    inbox_row = _inbox(inbox)
    values = {
        "identifier": _text(identifier, "identifier"),
        "name": _text(name, "name"),
        "email": _text(email, "email"),
        "phone_number": _text(phone_number, "phone_number"),
    }
    if values["email"]:
        try:
            validate_email(values["email"])
        except DjangoValidationError:
            raise InvalidInputError(f"email {values['email']!r} is not a valid email address.") from None
    if values["phone_number"] and not PHONE_RE.match(values["phone_number"]):
        raise InvalidInputError(
            f"phone_number {values['phone_number']!r} is not in E.164 format (a '+', the country code and the "
            "number, digits only, e.g. '+14155550123'); UniLink refuses other formats."
        )
    attributes = _json_dict(custom_attributes, "custom_attributes")
    user_key: tuple[ContentType, str] | None = None
    if user is not None:
        if not isinstance(user, models.Model) or user.pk is None:
            raise InvalidInputError("user must be a saved model instance (e.g. request.user), or None.")
        user_key = (ContentType.objects.get_for_model(user, for_concrete_model=False), str(user.pk))

    with transaction.atomic():
        contact, created = _get_or_create_contact(inbox_row, values, attributes, user_key)
        contact_inbox, linked_now = _contact_inbox(contact, inbox_row)
        requeue = not created and contact.remote_id is None and contact.local_state == LocalState.FAILED
        if not created and contact.remote_id is None and contact.local_state in (LocalState.QUEUED, LocalState.FAILED):
            # Not on UniLink yet: the newest details are the ones to send.
            changed: dict[str, Any] = {k: v for k, v in values.items() if v and getattr(contact, k) != v}
            if attributes and attributes != contact.custom_attributes:
                changed["custom_attributes"] = attributes
            if requeue:
                changed.update(local_state=LocalState.QUEUED, local_attempts=0, local_state_changed=timezone.now())
            for key, value in changed.items():
                setattr(contact, key, value)
            if changed:
                contact.save(update_fields=[*changed, "local_updated"])
        if created or requeue or (linked_now and contact.local_state != LocalState.FAILED):
            enqueue_on_commit("django_unilink.deliver_contact", contact.pk)
    return contact


def _get_or_create_contact(
    inbox: Inbox,
    values: dict[str, str],
    attributes: dict[str, Any],
    user_key: tuple[ContentType, str] | None,
) -> tuple[Contact, bool]:
    existing = _find_contact(inbox, values["identifier"], user_key)
    if existing is not None:
        return existing, False
    contact = Contact(
        account_id=inbox.account_id,
        custom_attributes=attributes,
        local_state=LocalState.QUEUED,
        local_state_changed=timezone.now(),
        **values,
    )
    if user_key is not None:
        contact.user_content_type, contact.user_object_id = user_key
    try:
        with transaction.atomic():  # a savepoint: a concurrent call may create the same contact
            contact.save()
    except IntegrityError:
        existing = _find_contact(inbox, values["identifier"], user_key)
        if existing is None:
            raise
        return existing, False
    return contact, True


def _find_contact(inbox: Inbox, identifier: str, user_key: tuple[ContentType, str] | None) -> Contact | None:
    rows = Contact.objects.filter(account_id=inbox.account_id)
    if identifier:
        found = rows.filter(identifier=identifier).first()
        if found is not None:
            if (
                user_key is not None
                and found.user_object_id
                and ((found.user_content_type_id, found.user_object_id) != (user_key[0].pk, user_key[1]))
            ):
                raise InvalidInputError(
                    f"The contact with identifier {identifier!r} is linked to another user; one identifier "
                    "belongs to one person."
                )
            if user_key is not None and not found.user_object_id:
                found.user_content_type, found.user_object_id = user_key
                try:
                    with transaction.atomic():
                        found.save(update_fields=["user_content_type", "user_object_id", "local_updated"])
                except IntegrityError:
                    raise InvalidInputError(
                        "That user is already linked to another contact; pass that contact's identifier."
                    ) from None
            return found
    if user_key is not None:
        found = rows.filter(user_content_type=user_key[0], user_object_id=user_key[1]).first()
        if found is not None:
            if identifier and found.identifier and found.identifier != identifier:
                raise InvalidInputError(
                    f"That user is already linked to the contact with identifier {found.identifier!r}, "
                    f"not {identifier!r}."
                )
            if identifier and not found.identifier:
                found.identifier = identifier
                found.save(update_fields=["identifier", "local_updated"])
            return found
    return None


def _contact_inbox(contact: Contact, inbox: Inbox) -> tuple[ContactInbox, bool]:
    """The contact's session on ``inbox``, with a ``source_id`` generated here when new."""
    if contact.account_id != inbox.account_id:
        raise InvalidInputError(
            f"Contact {contact.pk} belongs to another UniLink account than inbox {inbox.key!r}; contacts cannot "
            "cross accounts. Call ensure_contact(inbox=...) for that inbox."
        )
    found = ContactInbox.objects.filter(contact=contact, inbox=inbox).order_by("pk").first()
    if found is not None:
        return found, False
    return ContactInbox.objects.create(contact=contact, inbox=inbox, source_id=str(uuid.uuid4())), True


# -- conversations -------------------------------------------------------------------------------


def start_conversation(
    contact: Contact, *, inbox: str = conf.DEFAULT_INBOX, custom_attributes: Mapping[str, Any] | None = None
) -> Conversation:
    """A new conversation of ``contact`` in ``inbox``, created on UniLink by a task.

    The task creates the contact first when it is not on UniLink yet.
    """
    _saved(contact, Contact, "contact")
    inbox_row = _inbox(inbox)
    attributes = _json_dict(custom_attributes, "custom_attributes")
    contact = Contact.objects.get(pk=contact.pk)
    if contact.remote_id is None and contact.local_state == LocalState.REMOTE:
        raise InvalidInputError(f"Contact {contact.pk} has no UniLink id; create contacts with ensure_contact().")
    with transaction.atomic():
        contact_inbox, _ = _contact_inbox(contact, inbox_row)
        conversation = Conversation.objects.create(
            inbox=inbox_row,
            contact_inbox=contact_inbox,
            custom_attributes=attributes,
            additional_attributes={CONVERSATION_KEY: str(uuid.uuid4())},
            local_state=LocalState.QUEUED,
            local_state_changed=timezone.now(),
        )
        if contact.remote_id is None:
            # The host wants this person reachable: give a failed contact another chance.
            requeue_failed(Contact.objects.filter(pk=contact.pk))
        enqueue_on_commit("django_unilink.deliver_conversation", conversation.pk)
    return conversation


def set_status(conversation: Conversation, status: str) -> Conversation:
    """Change a conversation's status on UniLink (``open``, ``resolved``, ``pending``, ``snoozed``).

    The change is sent after the messages queued before it. ``conversation.status`` mirrors the
    platform and changes when UniLink confirms; the request waits in ``local_pending_status``.
    """
    _saved(conversation, Conversation, "conversation")
    if status not in CONVERSATION_STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(CONVERSATION_STATUSES)}, not {status!r}.")
    row = Conversation.objects.select_related("inbox").get(pk=conversation.pk)
    _sendable_inbox(row.inbox, f"Conversation {row.pk}")
    if row.local_state == LocalState.FAILED:
        raise InvalidInputError(
            f"Conversation {row.pk} could not be created on UniLink ({row.local_error}); retry it first "
            "(admin action or manage.py unilink_retry)."
        )
    with transaction.atomic():
        fields = {"local_pending_status": status, "local_updated": timezone.now()}
        if row.remote_id is not None:
            fields["local_attempts"] = 0
        Conversation.objects.filter(pk=row.pk).update(**fields)
        enqueue_on_commit("django_unilink.deliver_conversation", row.pk)
    conversation.local_pending_status = status
    return conversation


# -- messages ------------------------------------------------------------------------------------


def send_message(
    conversation: Conversation,
    content: str | None,
    *,
    message_type: str = "incoming",
    private: bool = False,
    attachments: Iterable[AttachmentInput] = (),
    content_attributes: Mapping[str, Any] | None = None,
) -> Message:
    """Queue a message in ``conversation``; returns the local row (``local_state="queued"``).

    ``incoming`` is the end user writing; ``outgoing`` is the site answering as an agent or bot;
    ``private=True`` (outgoing only) is an internal note agents see and end users never do.
    ``attachments``: up to 15 files, each a Django ``File`` (e.g. an ``UploadedFile``) or a
    ``(filename, bytes or binary file[, mime type])`` tuple; they are stored with the default
    storage until sent. Messages of one conversation reach UniLink in the order of these calls.
    """
    _saved(conversation, Conversation, "conversation")
    # The instance as given (no query: this is the hot path). A conversation that failed is
    # given another chance by the task when it finds new messages in it.
    _sendable_inbox(conversation.inbox, f"Conversation {conversation.pk}")
    if message_type not in SENDABLE_MESSAGE_TYPES:
        raise InvalidInputError(
            f"message_type must be 'incoming' (the end user writes) or 'outgoing' (the site answers as an "
            f"agent or bot), not {message_type!r}."
        )
    if not isinstance(private, bool):
        raise InvalidInputError(f"private must be True or False, not {private!r}.")
    if private and message_type != "outgoing":
        raise InvalidInputError("A private note is written by an agent: use message_type='outgoing' with private=True.")
    if content is not None and not isinstance(content, str):
        raise InvalidInputError(f"content must be a string, not {type(content).__name__}.")
    content = content or ""
    if len(content) > MAX_CONTENT_LENGTH:
        raise InvalidInputError(
            f"content is {len(content)} characters long; UniLink accepts at most {MAX_CONTENT_LENGTH}."
        )
    files = _attachment_inputs(attachments)
    if not content.strip() and not files:
        raise InvalidInputError("A message needs content or at least one attachment; both are empty.")
    attributes = _json_dict(content_attributes, "content_attributes")

    saved: list[Attachment] = []
    try:
        # One INSERT alone is atomic already; a transaction would cost two more round trips.
        with transaction.atomic() if files else contextlib.nullcontext():
            # The first statement writes: on SQLite it takes the write lock at once.
            message = Message.objects.create(
                conversation=conversation,
                source_id=str(uuid.uuid4()),
                content=content,
                message_type=message_type,
                private=private,
                content_attributes=attributes,
                local_state=LocalState.QUEUED,
                local_state_changed=timezone.now(),
            )
            for name, data, mime in files:
                attachment = Attachment(
                    message=message,
                    filename=name,
                    mime_type=mime,
                    extension=os.path.splitext(name)[1].lstrip(".")[:32],
                    file_type=_file_type(mime),
                )
                attachment.file.save(name, data, save=False)
                saved.append(attachment)
                attachment.file_size = attachment.file.size
                attachment.save()
            enqueue_on_commit("django_unilink.deliver_conversation", conversation.pk)
    except BaseException:
        for attachment in saved:  # nothing half-written: no orphan files either
            attachment.file.delete(save=False)
        raise
    return message


def _attachment_inputs(attachments: Iterable[AttachmentInput]) -> list[tuple[str, File, str]]:
    """Validate attachments: ``(filename, django File, mime type)`` each."""
    if (
        isinstance(attachments, (str, bytes, File))
        or isinstance(attachments, tuple)
        and attachments
        and isinstance(attachments[0], str)
    ):
        raise InvalidInputError("attachments must be a list of files, e.g. attachments=[upload] (not one file).")
    items = list(attachments or ())
    if len(items) > MAX_ATTACHMENTS:
        raise InvalidInputError(
            f"A message can carry at most {MAX_ATTACHMENTS} attachments; got {len(items)}. "
            "Split them over several messages."
        )
    result = []
    for index, item in enumerate(items):
        where = f"attachments[{index}]"
        if isinstance(item, File):
            name = os.path.basename(item.name or "")
            mime = getattr(item, "content_type", None) or ""
            data: File = item
        elif isinstance(item, tuple) and len(item) in (2, 3):
            name = item[0] if isinstance(item[0], str) else ""
            payload = item[1]
            mime = item[2] if len(item) == 3 else ""
            if isinstance(payload, (bytes, bytearray)):
                data = ContentFile(bytes(payload))
            elif hasattr(payload, "read"):
                data = File(payload)
            else:
                raise InvalidInputError(
                    f"{where}: the data must be bytes or a binary file, not {type(payload).__name__}."
                )
        else:
            raise InvalidInputError(
                f"{where} must be a Django File (e.g. an uploaded file) or a (filename, bytes or file[, mime type]) "
                f"tuple, not {type(item).__name__}."
            )
        name = os.path.basename(str(name).strip())
        if not name:
            raise InvalidInputError(f"{where} has no file name; UniLink needs one (e.g. 'photo.jpg').")
        if not isinstance(mime, str):
            raise InvalidInputError(f"{where}: the mime type must be a string such as 'image/png'.")
        mime = mime or mimetypes.guess_type(name)[0] or "application/octet-stream"
        if "/" not in mime:
            raise InvalidInputError(f"{where}: {mime!r} is not a mime type (e.g. 'image/png').")
        size = _size(data)
        if size == 0:
            raise InvalidInputError(f"{where} ({name}) is empty.")
        result.append((name, data, mime))
    return result


def _size(data: File) -> int | None:
    try:
        return int(data.size)
    except (AttributeError, TypeError, ValueError, OSError):
        return None


def _file_type(mime: str) -> str:
    kind = mime.split("/", 1)[0]
    return kind if kind in ("image", "audio", "video") else "file"


def report_status(message: Message, status: str, error: str | None = None) -> Message:
    """Tell UniLink what happened to an agent's message on the site: ``delivered``, ``read``,
    or ``failed`` (with ``error``, shown to the agent).

    The platform ignores ``read`` -> ``delivered``. The report waits in
    ``local_report_status`` until sent; a message this site wrote is reported once it is sent.
    """
    _saved(message, Message, "message")
    if status not in REPORTABLE_STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(REPORTABLE_STATUSES)}, not {status!r}.")
    if error is not None and not isinstance(error, str):
        raise InvalidInputError(f"error must be a string, not {type(error).__name__}.")
    if error and status != "failed":
        raise InvalidInputError(f"error goes with status 'failed' only (UniLink ignores it for {status!r}).")
    error = (error or "").strip()
    if len(error) > MAX_ERROR_LENGTH:
        raise InvalidInputError(f"error is {len(error)} characters long; keep it under {MAX_ERROR_LENGTH}.")
    row = Message.objects.select_related("conversation__inbox").get(pk=message.pk)
    _sendable_inbox(row.conversation.inbox, f"Message {row.pk}")
    if row.private:
        raise InvalidInputError(
            f"Message {row.pk} is a private note: it is never shown to end users, so it has no delivery status."
        )
    if row.local_state == LocalState.FAILED:
        raise InvalidInputError(
            f"Message {row.pk} never reached UniLink ({row.local_error}); there is nothing to report."
        )
    with transaction.atomic():
        fields: dict[str, Any] = {
            "local_report_status": status,
            "local_report_error": error,
            "local_updated": timezone.now(),
        }
        if row.local_state in (LocalState.SENT, LocalState.REMOTE):
            fields["local_attempts"] = 0
        Message.objects.filter(pk=row.pk).update(**fields)
        enqueue_on_commit("django_unilink.deliver_conversation", row.conversation_id)
    message.local_report_status, message.local_report_error = status, error
    return message
