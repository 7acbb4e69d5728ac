"""Every shipped example delivery, signed for real and posted through the real URL; signal kwargs pinned."""

from __future__ import annotations

import datetime as dt

import pytest

from django_unilink.models import Attachment, Contact, ContactInbox, Conversation, LocalState, Message, WebhookEvent
from django_unilink.testing import factories
from django_unilink.testing.webhooks import build_payload, example_names, load_example, post_webhook, record_signals
from django_unilink.webhooks import UnilinkEvent

pytestmark = pytest.mark.django_db

SOURCE_ID = "a3f6c1d2-5b7e-4f90-9c3a-1e2d4b6f8a01"
UTC = dt.UTC


def post(client, name_or_payload, **kwargs):
    payload = load_example(name_or_payload) if isinstance(name_or_payload, str) else name_or_payload
    response = post_webhook(client, "default", payload, **kwargs)
    return response


def by_name(calls):
    return [c.name for c in calls]


def test_every_example_is_covered():
    assert example_names() == [
        "contact_created",
        "conversation_created",
        "conversation_status_changed",
        "conversation_typing_on",
        "conversation_updated",
        "message_created_incoming",
        "message_created_outgoing",
        "message_updated",
    ]


@pytest.mark.parametrize("name", [n for n in example_names() if n != "contact_created"])
def test_each_example_is_accepted_logged_and_announced(client, name):
    with record_signals("webhook_received") as calls:
        response = post(client, name, delivery_id=f"delivery-{name}")
    assert response.status_code == 200
    assert response.json() == {"status": "processed"}
    row = WebhookEvent.objects.get()
    assert (row.delivery_id, row.event, row.valid, row.state, row.inbox.key) == (
        f"delivery-{name}",
        load_example(name)["event"],
        True,
        WebhookEvent.State.PROCESSED,
        "default",
    )
    assert row.payload == load_example(name)
    assert row.headers["X-Chatwoot-Signature"] == "sha256=(redacted)"
    assert row.signed_at is not None and row.processed_at is not None and row.attempts == 1
    assert [(c.sender, set(c.kwargs)) for c in calls] == [(WebhookEvent, {"webhook_event"})]
    assert calls[0].kwargs["webhook_event"].pk == row.pk
    # Every example names conversation 12 of contact 42 through contact inbox 55.
    conversation = Conversation.objects.get()
    assert (conversation.remote_id, conversation.contact_inbox.source_id, conversation.contact.remote_id) == (
        12,
        SOURCE_ID,
        42,
    )


def test_contact_created_is_not_an_api_channel_event_and_is_ignored(client):
    with record_signals() as calls:
        response = post(client, "contact_created")
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert WebhookEvent.objects.get().state == WebhookEvent.State.IGNORED
    assert by_name(calls) == ["webhook_received"]
    assert not Contact.objects.exists()


def test_conversation_created_mirrors_contact_contact_inbox_and_conversation(client):
    with record_signals() as calls:
        post(client, "conversation_created")
    conversation = Conversation.objects.get()
    contact = Contact.objects.get()
    assert (contact.remote_id, contact.name, contact.email, contact.identifier, contact.phone_number) == (
        42,
        "Jane Doe",
        "jane.doe@example.com",
        "unilink-user-1001",
        "+15555550123",
    )
    contact_inbox = ContactInbox.objects.get()
    assert (contact_inbox.source_id, contact_inbox.remote_id, contact_inbox.contact, contact_inbox.inbox.key) == (
        SOURCE_ID,
        55,
        contact,
        "default",
    )
    assert conversation.status == "open" and conversation.local_state == LocalState.REMOTE
    assert conversation.custom_attributes == {"unilink_thread_id": "thr_8K2M4Q"}
    assert conversation.updated_at == dt.datetime.fromtimestamp(1781774141.497215, UTC)
    assert "event" not in conversation.raw and conversation.raw["id"] == 12
    # The nested last message is not mirrored from conversation events: message events carry messages.
    assert not Message.objects.exists()
    assert by_name(calls) == ["webhook_received", "conversation_created"]
    created = calls[1]
    assert created.sender is Conversation
    assert set(created.kwargs) == {"conversation", "event"}
    assert created.kwargs["conversation"] == conversation
    event = created.kwargs["event"]
    assert isinstance(event, UnilinkEvent)
    assert (event.name, event.inbox.key, event.payload, event.delivery_id is not None) == (
        "conversation_created",
        "default",
        load_example("conversation_created"),
        True,
    )
    assert event.occurred_at == dt.datetime.fromtimestamp(1781774141.497215, UTC)
    assert event.occurred_at.tzinfo is not None and event.received_at.tzinfo is not None
    assert event.webhook_event == WebhookEvent.objects.get() and not event.is_sync


def test_message_created_incoming_from_elsewhere_is_received_with_its_attachment(client):
    with record_signals() as calls:
        post(client, "message_created_incoming")
    message = Message.objects.get()
    assert (message.remote_id, message.message_type, message.source_id, message.status, message.private) == (
        9876,
        "incoming",
        "unilink-msg-7d2e91",
        "sent",  # from the nested copy: top-level webhook messages carry no status
        False,
    )
    assert (message.sender_type, message.sender_remote_id, message.sender_name) == ("contact", 42, "Jane Doe")
    assert message.created_at == dt.datetime(2026, 6, 18, 9, 15, 42, 318000, tzinfo=UTC)
    assert message.updated_at == dt.datetime(2026, 6, 18, 9, 15, 42, 318000, tzinfo=UTC)
    assert "conversation" not in message.raw and "event" not in message.raw
    attachment = Attachment.objects.get()
    assert (
        attachment.message,
        attachment.remote_id,
        attachment.file_type,
        attachment.mime_type,
        attachment.file_size,
    ) == (
        message,
        311,
        "image",
        "image/jpeg",
        184320,
    )
    assert by_name(calls) == ["webhook_received", "conversation_created", "message_received"]
    received = calls[2]
    assert received.sender is Message and set(received.kwargs) == {"message", "event"}
    assert received.kwargs["message"] == message
    assert received.kwargs["event"].name == "message_created"
    assert received.kwargs["event"].occurred_at == dt.datetime(2026, 6, 18, 9, 15, 42, 318000, tzinfo=UTC)


def test_message_created_outgoing_is_an_agent_reply(client):
    post(client, "conversation_created")
    with record_signals() as calls:
        post(client, "message_created_outgoing")
    message = Message.objects.get()
    assert (message.message_type, message.private, message.source_id, message.sender_type, message.sender_name) == (
        "outgoing",
        False,
        None,
        "user",
        "Priya Sharma",
    )
    assert message.content == "Sorry about that, Jane! I've started a replacement for order #1042."
    # The conversation got newer data (assigned to Priya, first reply): reported as an update.
    assert by_name(calls) == ["webhook_received", "conversation_updated", "message_received"]
    assert calls[1].kwargs["changed_attributes"] == {"assignee_id": {"previous_value": None, "current_value": 3}}
    assert set(calls[2].kwargs) == {"message", "event"}


def test_private_note_is_received_and_flagged_private(client):
    payload = build_payload("message_created", private=True, content="Internal: refund approved")
    with record_signals("message_received") as calls:
        post(client, payload)
    assert [c.kwargs["message"].private for c in calls] == [True]


def test_template_message_is_received(client):
    payload = build_payload("message_created", message_type="template", content="Rate us")
    with record_signals("message_received") as calls:
        post(client, payload)
    assert [c.kwargs["message"].message_type for c in calls] == ["template"]


def test_message_updated_deletion_marks_the_known_reply_deleted(client):
    post(client, "message_created_outgoing")
    with record_signals() as calls:
        post(client, "message_updated")
    message = Message.objects.get()
    assert message.is_deleted
    assert (message.content, message.status) == ("This message was deleted", "delivered")
    assert message.updated_at == dt.datetime(2026, 6, 18, 9, 20, 31, 640000, tzinfo=UTC)
    assert by_name(calls) == ["webhook_received", "message_updated"]
    updated = calls[1]
    assert updated.sender is Message and set(updated.kwargs) == {"message", "event"}
    assert updated.kwargs["message"] == message
    assert updated.kwargs["event"].name == "message_updated"
    assert updated.kwargs["event"].occurred_at == dt.datetime(2026, 6, 18, 9, 20, 31, 640000, tzinfo=UTC)


def test_conversation_updated_reports_changed_attributes(client):
    post(client, "conversation_created")
    with record_signals() as calls:
        post(client, "conversation_updated")
    conversation = Conversation.objects.get()
    assert (conversation.assignee_remote_id, conversation.assignee_type, conversation.assignee_name) == (
        3,
        "User",
        "Priya",
    )
    assert by_name(calls) == ["webhook_received", "conversation_updated"]
    updated = calls[1]
    assert updated.sender is Conversation
    assert set(updated.kwargs) == {"conversation", "changed_attributes", "event"}
    assert updated.kwargs["changed_attributes"] == {
        "assignee_id": {"previous_value": None, "current_value": 3},
        "updated_at": {"previous_value": "2026-06-18T09:15:42.355Z", "current_value": "2026-06-18T09:16:10.512Z"},
    }


def test_conversation_status_changed_reports_previous_status(client):
    post(client, "conversation_updated")
    with record_signals() as calls:
        post(client, "conversation_status_changed")
    assert Conversation.objects.get().status == "resolved"
    assert by_name(calls) == ["webhook_received", "conversation_updated", "conversation_status_changed"]
    # changed_attributes is null in this event (unilink-api.md §0.10): the mirror's own diff is reported.
    assert calls[1].kwargs["changed_attributes"] == {"status": {"previous_value": "open", "current_value": "resolved"}}
    changed = calls[2]
    assert changed.sender is Conversation
    assert set(changed.kwargs) == {"conversation", "previous_status", "event"}
    assert (changed.kwargs["conversation"].status, changed.kwargs["previous_status"]) == ("resolved", "open")


@pytest.mark.parametrize(("event", "is_typing"), [("conversation_typing_on", True), ("conversation_typing_off", False)])
def test_typing(client, event, is_typing):
    post(client, "conversation_created")
    with record_signals() as calls:
        post(client, build_payload(event))
    assert by_name(calls) == ["webhook_received", "conversation_updated", "typing"]
    typing = calls[2]
    assert typing.sender is Conversation
    assert set(typing.kwargs) == {"conversation", "is_typing", "user", "event"}
    assert typing.kwargs["is_typing"] is is_typing
    assert typing.kwargs["user"] == {"id": 3, "name": "Priya Sharma", "email": "priya@acme.example", "type": "user"}
    assert typing.kwargs["conversation"].remote_id == 12
    assert typing.kwargs["event"].name == event


def test_timeline_as_the_site_that_started_the_conversation_sees_it(client):
    """The README's timeline, for the site whose user wrote the two incoming messages."""
    inbox = factories.InboxFactory()
    contact = factories.ContactFactory(
        account=inbox.account, remote_id=42, identifier="unilink-user-1001", name="Jane Doe"
    )
    contact_inbox = factories.ContactInboxFactory(contact=contact, inbox=inbox, source_id=SOURCE_ID, remote_id=55)
    conversation = factories.ConversationFactory(
        inbox=inbox,
        contact_inbox=contact_inbox,
        remote_id=12,
        local_state=LocalState.SENT,
        custom_attributes={"unilink_thread_id": "thr_8K2M4Q"},
        updated_at=None,
    )
    first = factories.MessageFactory(
        conversation=conversation,
        remote_id=9875,
        source_id="unilink-msg-7d2e90",
        message_type="incoming",
        content="Hi, I need help with my order #1042",
        local_state=LocalState.SENT,
        status="",
    )
    # The photo message: posted, but the API answer is not stored yet (the webhook is faster).
    second = factories.MessageFactory(
        conversation=conversation,
        remote_id=None,
        source_id="unilink-msg-7d2e91",
        message_type="incoming",
        content="Here is a photo of the damaged item",
        local_state=LocalState.SENDING,
        status="",
    )
    factories.AttachmentFactory(message=second, remote_id=None, data_url="", file_type="image")
    timeline = [
        "conversation_created",
        "message_created_incoming",
        "conversation_updated",
        "conversation_typing_on",
        "message_created_outgoing",
        "message_updated",
        "conversation_status_changed",
    ]
    with record_signals() as calls:
        for name in timeline:
            assert post(client, name).status_code == 200
    assert [c.name for c in calls if c.name != "webhook_received"] == [
        "conversation_updated",  # assigned (conversation_updated)
        "typing",
        "message_received",  # the agent's reply
        "message_updated",  # ... deleted
        "conversation_updated",  # resolved
        "conversation_status_changed",
    ]
    assert by_name(calls).count("webhook_received") == len(timeline)
    second.refresh_from_db()
    assert (second.remote_id, second.local_state, second.status) == (9876, LocalState.SENDING, "sent")
    assert second.attachments.get().remote_id == 311  # our upload, now linked to the remote file
    assert Message.objects.count() == 3
    assert Conversation.objects.count() == 1 and Contact.objects.count() == 1
    first.refresh_from_db()
    assert first.remote_id == 9875
    assert WebhookEvent.objects.filter(state=WebhookEvent.State.PROCESSED).count() == len(timeline)
