import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.test import override_settings

from django_unilink.models import Contact, Inbox, LocalState, Message
from django_unilink.testing.factories import (
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    WebhookEventFactory,
)

pytestmark = pytest.mark.django_db


def test_inbox_for_key_creates_and_follows_settings():
    inbox = Inbox.objects.for_key("default")
    assert (inbox.remote_id, inbox.account.remote_id) == (7, 1)
    assert Inbox.objects.for_key("default").pk == inbox.pk
    with override_settings(
        UNILINK={"BASE_URL": "http://x.test", "ACCOUNT_ID": 2, "INBOX_ID": "8", "API_ACCESS_TOKEN": "t"}
    ):
        moved = Inbox.objects.for_key("default")
    assert moved.pk == inbox.pk
    assert (moved.remote_id, moved.account.remote_id, moved.account.base_url) == (8, 2, "http://x.test")


def test_remote_ids_unique_within_scope_and_null_allowed_many_times():
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, remote_id=5)
    MessageFactory(conversation=conversation, remote_id=None, local_state=LocalState.QUEUED)
    MessageFactory(conversation=conversation, remote_id=None, local_state=LocalState.QUEUED)
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(conversation=conversation, remote_id=5)
    # The same remote id in another conversation is another scope.
    MessageFactory(remote_id=5)
    assert Message.objects.filter(remote_id=5).count() == 2


def test_source_id_unique_per_conversation():
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, source_id="abc")
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(conversation=conversation, source_id="abc")


def test_contact_identifier_unique_per_account_blank_allowed():
    a = ContactFactory(identifier="")
    ContactFactory(identifier="", account=a.account)
    ContactFactory(identifier="u-1", account=a.account)
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactFactory(identifier="u-1", account=a.account)


def test_contact_links_any_host_object_without_requiring_auth_user():
    user = get_user_model().objects.create(username="jane")
    contact = ContactFactory(user=user)
    contact.refresh_from_db()
    assert contact.user == user
    assert Contact.objects.get(user_object_id=str(user.pk)).pk == contact.pk


def test_message_helpers_and_ordering():
    conversation = ConversationFactory()
    m1 = MessageFactory(conversation=conversation, content_attributes={"deleted": True})
    m2 = MessageFactory(
        conversation=conversation,
        content_attributes={"external_error": "500 Internal Server Error"},
        local_state=LocalState.SENT,
    )
    assert m1.is_deleted and not m2.is_deleted
    assert m2.external_error == "500 Internal Server Error" and m1.external_error == ""
    assert not m1.is_from_this_site and m2.is_from_this_site
    assert list(conversation.messages.all()) == [m1, m2]
    assert conversation.contact == conversation.contact_inbox.contact


def test_webhook_delivery_id_unique_only_for_valid_deliveries():
    event = WebhookEventFactory(delivery_id="d-1")
    WebhookEventFactory(delivery_id="d-1", valid=False, inbox=event.inbox)
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookEventFactory(delivery_id="d-1", inbox=event.inbox)
    assert event.payload == {"event": "message_created"}


def test_inbox_with_conversations_does_not_follow_a_changed_setting():
    """Old conversations belong to the old remote inbox: re-pointing the row would send them elsewhere."""
    from django.core.exceptions import ImproperlyConfigured

    from django_unilink import services

    conversation = ConversationFactory()  # inbox "default" = inbox 7 of account 1
    moved = {"BASE_URL": "http://127.0.0.1:9", "ACCOUNT_ID": 2, "INBOX_ID": 8, "API_ACCESS_TOKEN": "t"}
    with override_settings(UNILINK=moved):
        with pytest.raises(ImproperlyConfigured, match=r"'default' was UniLink inbox 7 of account 1.*rename"):
            Inbox.objects.for_key("default")
        with pytest.raises(ValueError, match="another inbox"):
            services.send_message(conversation, "hello")
    inbox = Inbox.objects.get(key="default")
    assert (inbox.remote_id, inbox.account.remote_id) == (7, 1)
    assert not Message.objects.filter(content="hello").exists()
