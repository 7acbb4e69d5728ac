"""services.*: validation before anything is written or queued, local rows, queued tasks."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from django_unilink import services
from django_unilink.exceptions import ConfigurationError, InvalidInputError
from django_unilink.models import Attachment, Contact, ContactInbox, Conversation, Inbox, LocalState, Message
from django_unilink.outbox import CONVERSATION_KEY, Enqueue
from django_unilink.testing.factories import (
    AccountFactory,
    ContactFactory,
    ConversationFactory,
    InboxFactory,
    MessageFactory,
)

pytestmark = pytest.mark.django_db

CONVERSATION_TASK = "django_unilink.deliver_conversation"
CONTACT_TASK = "django_unilink.deliver_contact"


def queued(callbacks: list[Any]) -> list[tuple[str, int]]:
    """The tasks the captured on-commit callbacks would queue."""
    return [(c.task_name, c.pk) for c in callbacks if isinstance(c, Enqueue)]


def _stored_files() -> set[str]:
    root = os.path.join(django_settings.MEDIA_ROOT, "unilink")
    found = set()
    for folder, _dirs, names in os.walk(root):
        found.update(os.path.join(folder, n) for n in names)
    return found


@pytest.fixture
def conversation(inbox: Inbox) -> Conversation:
    """A conversation that exists remotely (mirrored), in the configured inbox."""
    return ConversationFactory(inbox=inbox)


# -- ensure_contact ---------------------------------------------------------------------------------


def test_ensure_contact_writes_contact_and_session_and_queues_creation(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        contact = services.ensure_contact(identifier="user-1", name="Alice", email="alice@example.com")
    assert contact.local_state == LocalState.QUEUED and contact.remote_id is None
    assert (contact.identifier, contact.name, contact.email) == ("user-1", "Alice", "alice@example.com")
    contact_inbox = ContactInbox.objects.get(contact=contact)
    assert contact_inbox.inbox.key == "default" and contact_inbox.inbox.remote_id == 7
    assert uuid.UUID(contact_inbox.source_id)  # generated here, so a webhook can be matched to it
    assert queued(callbacks) == [(CONTACT_TASK, contact.pk)]


def test_ensure_contact_is_idempotent_by_identifier(django_capture_on_commit_callbacks):
    first = services.ensure_contact(identifier="user-1", name="Alice")
    with django_capture_on_commit_callbacks() as callbacks:
        again = services.ensure_contact(identifier="user-1", name="Alice")
    assert again.pk == first.pk
    assert Contact.objects.count() == 1 and ContactInbox.objects.count() == 1
    assert queued(callbacks) == []


def test_ensure_contact_is_idempotent_by_linked_user_and_links_identifier_later():
    user = get_user_model().objects.create(username="jane")
    first = services.ensure_contact(user=user, name="Jane")
    again = services.ensure_contact(user=user, identifier="jane-1")
    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.user == user and again.identifier == "jane-1"
    assert services.ensure_contact(identifier="jane-1").pk == first.pk


def test_ensure_contact_refuses_an_identifier_of_another_user():
    alice, bob = get_user_model().objects.create(username="alice"), get_user_model().objects.create(username="bob")
    services.ensure_contact(identifier="x-1", user=alice)
    with pytest.raises(InvalidInputError, match="linked to another user"):
        services.ensure_contact(identifier="x-1", user=bob)


def test_ensure_contact_updates_details_while_not_on_unilink_and_requeues_a_failed_one(
    django_capture_on_commit_callbacks,
):
    contact = services.ensure_contact(identifier="u-2", email="old@example.com")
    Contact.objects.filter(pk=contact.pk).update(local_state=LocalState.FAILED, local_error="HTTP 422: Invalid email")
    with django_capture_on_commit_callbacks() as callbacks:
        again = services.ensure_contact(identifier="u-2", email="new@example.com")
    again.refresh_from_db()
    assert (again.email, again.local_state, again.local_attempts) == ("new@example.com", LocalState.QUEUED, 0)
    assert queued(callbacks) == [(CONTACT_TASK, contact.pk)]


def test_ensure_contact_leaves_a_contact_on_unilink_unchanged(inbox):
    existing = ContactFactory(account=inbox.account, identifier="u-3", email="kept@example.com")
    again = services.ensure_contact(identifier="u-3", email="other@example.com")
    assert again.pk == existing.pk
    existing.refresh_from_db()
    assert existing.email == "kept@example.com"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"email": "not-an-email"}, "email 'not-an-email' is not a valid email address"),
        ({"phone_number": "0612345678"}, "E.164"),
        ({"name": "x" * 256}, "name is 256 characters long; UniLink accepts at most 255"),
        ({"identifier": 42}, "identifier must be a string"),
        ({"custom_attributes": ["a"]}, "custom_attributes must be a dict"),
        ({"custom_attributes": {"when": object()}}, "custom_attributes must contain only JSON values"),
        ({"inbox": "sales"}, "No UniLink inbox 'sales' is configured"),
        ({"user": object()}, "user must be a saved model instance"),
    ],
)
def test_ensure_contact_bad_input_writes_and_queues_nothing(kwargs, match, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(InvalidInputError, match=match):
        services.ensure_contact(**kwargs)
    assert Contact.objects.count() == 0 and ContactInbox.objects.count() == 0
    assert callbacks == []


def test_bad_input_error_is_a_value_error():
    with pytest.raises(ValueError):
        services.ensure_contact(email="nope")


def test_ensure_contact_with_a_broken_inbox_configuration_says_which_setting(settings):
    settings.UNILINK = {**settings.UNILINK, "API_ACCESS_TOKEN": ""}
    with pytest.raises(ConfigurationError, match=r"UNILINK\['API_ACCESS_TOKEN'\]"):
        services.ensure_contact(identifier="u-9")
    assert Contact.objects.count() == 0


# -- start_conversation ---------------------------------------------------------------------------------


def test_start_conversation_writes_a_queued_conversation_with_its_key(django_capture_on_commit_callbacks):
    contact = services.ensure_contact(identifier="u-1")
    with django_capture_on_commit_callbacks() as callbacks:
        conversation = services.start_conversation(contact, custom_attributes={"order": "1234"})
    assert conversation.local_state == LocalState.QUEUED and conversation.remote_id is None
    assert conversation.contact_inbox == ContactInbox.objects.get(contact=contact)
    assert conversation.custom_attributes == {"order": "1234"}
    assert uuid.UUID(conversation.additional_attributes[CONVERSATION_KEY])
    assert queued(callbacks) == [(CONVERSATION_TASK, conversation.pk)]


def test_start_conversation_for_a_contact_of_another_account_is_refused(settings):
    services.ensure_contact(identifier="u-1")  # creates the default inbox row
    other_account = AccountFactory(base_url="https://elsewhere.test", remote_id=99)
    stranger = ContactFactory(account=other_account)
    with pytest.raises(InvalidInputError, match="another UniLink account"):
        services.start_conversation(stranger)
    assert Conversation.objects.count() == 0


def test_start_conversation_needs_a_saved_contact():
    with pytest.raises(InvalidInputError, match="contact must be a Contact instance"):
        services.start_conversation("alice")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="has not been saved"):
        services.start_conversation(Contact())


# -- send_message -----------------------------------------------------------------------------------------


def test_send_message_writes_a_queued_message_with_a_source_id(conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        message = services.send_message(conversation, "Where is my order?")
    message.refresh_from_db()
    assert (message.local_state, message.message_type, message.private) == (LocalState.QUEUED, "incoming", False)
    assert message.remote_id is None and uuid.UUID(message.source_id)
    assert queued(callbacks) == [(CONVERSATION_TASK, conversation.pk)]


def test_send_message_stores_attachments_until_sent(conversation):
    upload = SimpleUploadedFile("photo.png", b"\x89PNG fake", content_type="image/png")
    message = services.send_message(conversation, "", attachments=[upload, ("notes.txt", b"hello")])
    rows = list(message.attachments.order_by("pk"))
    assert [(a.filename, a.mime_type, a.file_type, a.file_size) for a in rows] == [
        ("photo.png", "image/png", "image", 9),
        ("notes.txt", "text/plain", "file", 5),
    ]
    with rows[1].file.open("rb") as handle:
        assert handle.read() == b"hello"


def _sixteen_files() -> list[tuple[str, bytes]]:
    return [(f"f{i}.txt", b"x") for i in range(16)]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("",), {}, "needs content or at least one attachment"),
        (("   \n",), {}, "needs content or at least one attachment"),
        ((None,), {}, "needs content or at least one attachment"),
        (("hi",), {"attachments": _sixteen_files()}, "at most 15 attachments; got 16"),
        (("hi",), {"message_type": "template"}, "message_type must be 'incoming'"),
        (("hi",), {"private": True}, "private note is written by an agent"),
        (("hi",), {"private": "yes"}, "private must be True or False"),
        (("x" * 150_001,), {}, "accepts at most 150000"),
        ((42,), {}, "content must be a string"),
        (("hi",), {"content_attributes": "x"}, "content_attributes must be a dict"),
        (("hi",), {"attachments": [("", b"x")]}, "has no file name"),
        (("hi",), {"attachments": [("a.txt", b"")]}, "is empty"),
        (("hi",), {"attachments": [("a.txt", 5)]}, "must be bytes or a binary file"),
        (("hi",), {"attachments": [b"raw"]}, "must be a Django File"),
        (("hi",), {"attachments": ("a.txt", b"x")}, "must be a list of files"),
        (("hi",), {"attachments": [("a.txt", b"x", "text")]}, "is not a mime type"),
    ],
)
def test_send_message_bad_input_writes_and_queues_nothing(
    conversation, args, kwargs, match, django_capture_on_commit_callbacks
):
    files_before = _stored_files()
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(InvalidInputError, match=match):
        services.send_message(conversation, *args, **kwargs)
    assert Message.objects.count() == 0 and Attachment.objects.count() == 0
    assert _stored_files() == files_before
    assert callbacks == []


def test_send_message_to_a_conversation_of_another_inbox_is_refused(inbox, django_capture_on_commit_callbacks):
    # An inbox row whose key is not (or no longer) configured: this site cannot send through it.
    foreign = ConversationFactory(inbox=InboxFactory(key="old-shop", account=inbox.account, remote_id=3))
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(InvalidInputError, match="another inbox|not configured"),
    ):
        services.send_message(foreign, "hello")
    assert Message.objects.count() == 0 and callbacks == []


def test_send_message_to_a_conversation_whose_inbox_now_points_elsewhere_is_refused(settings, inbox):
    conversation = ConversationFactory(inbox=inbox)
    settings.UNILINK = {**settings.UNILINK, "INBOX_ID": 8}
    with pytest.raises(InvalidInputError, match="conversation of another inbox"):
        services.send_message(conversation, "hello")
    assert Message.objects.count() == 0


def test_a_failed_insert_deletes_the_files_already_stored(conversation, monkeypatch):
    files_before = _stored_files()
    original = Attachment.save
    calls = {"n": 0}

    def save_then_fail(self, *args, **kwargs):  # the second attachment row cannot be written
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Attachment, "save", save_then_fail)
    with pytest.raises(RuntimeError):
        services.send_message(conversation, "hi", attachments=[("a.txt", b"a"), ("b.txt", b"b")])
    assert Message.objects.count() == 0
    assert _stored_files() == files_before


# -- set_status / report_status ---------------------------------------------------------------------------


def test_set_status_records_the_request_and_queues_it(conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.set_status(conversation, "resolved")
    conversation.refresh_from_db()
    assert (conversation.local_pending_status, conversation.status) == ("resolved", "open")
    assert queued(callbacks) == [(CONVERSATION_TASK, conversation.pk)]


@pytest.mark.parametrize("status", ["closed", "", None, "RESOLVED"])
def test_set_status_unknown_status_is_refused(conversation, status, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(InvalidInputError, match="status must be one of"),
    ):
        services.set_status(conversation, status)  # type: ignore[arg-type]
    conversation.refresh_from_db()
    assert conversation.local_pending_status == "" and callbacks == []


def test_report_status_records_the_report_and_queues_it(conversation, django_capture_on_commit_callbacks):
    reply = MessageFactory(conversation=conversation, message_type="outgoing")
    with django_capture_on_commit_callbacks() as callbacks:
        services.report_status(reply, "failed", error="Push service unavailable")
    reply.refresh_from_db()
    assert (reply.local_report_status, reply.local_report_error) == ("failed", "Push service unavailable")
    assert queued(callbacks) == [(CONVERSATION_TASK, conversation.pk)]


@pytest.mark.parametrize(
    ("status", "error", "private", "match"),
    [
        ("sent", None, False, "status must be one of delivered, read, failed"),
        ("seen", None, False, "status must be one of"),
        ("delivered", "oops", False, "error goes with status 'failed' only"),
        ("failed", 12, False, "error must be a string"),
        ("read", None, True, "private note"),
    ],
)
def test_report_status_bad_input_is_refused(conversation, status, error, private, match):
    reply = MessageFactory(conversation=conversation, message_type="outgoing", private=private)
    with pytest.raises(InvalidInputError, match=match):
        services.report_status(reply, status, error=error)
    reply.refresh_from_db()
    assert reply.local_report_status == ""
