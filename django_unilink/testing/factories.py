"""factory-boy factories for every django-unilink model.

Rows made by these factories look like mirrors of remote objects (``local_state="remote"``,
remote ids set). Pass ``local_state="queued", remote_id=None`` for rows this site is about to send.
The default inbox row uses the key ``"default"`` and matches the ids of ``settings.UNILINK`` when
they are set.
"""

from __future__ import annotations

import uuid
from typing import Any

import factory
from django.conf import settings
from django.utils import timezone

from .. import models


def _setting(name: str, default: Any) -> Any:
    return (getattr(settings, "UNILINK", None) or {}).get(name, default)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Account
        django_get_or_create = ("base_url", "remote_id")

    base_url = factory.LazyFunction(lambda: str(_setting("BASE_URL", "https://unilink.test")).rstrip("/"))
    remote_id = factory.LazyFunction(lambda: int(_setting("ACCOUNT_ID", 1)))
    name = "Acme Support"


class InboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Inbox
        django_get_or_create = ("key",)

    key = "default"
    account = factory.SubFactory(AccountFactory)
    remote_id = factory.LazyFunction(lambda: int(_setting("INBOX_ID", 7)))
    name = "UniLink API"
    channel_type = "Channel::Api"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Contact

    account = factory.SubFactory(AccountFactory)
    remote_id = factory.Sequence(lambda n: 1000 + n)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    identifier = factory.Sequence(lambda n: f"user-{n}")
    local_state = models.LocalState.REMOTE


class ContactInboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ContactInbox

    contact = factory.SubFactory(ContactFactory)
    inbox = factory.SubFactory(InboxFactory)
    source_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    remote_id = factory.Sequence(lambda n: 500 + n)


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Conversation

    inbox = factory.SubFactory(InboxFactory)
    contact_inbox = factory.SubFactory(ContactInboxFactory, inbox=factory.SelfAttribute("..inbox"))
    remote_id = factory.Sequence(lambda n: 100 + n)
    status = "open"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)
    local_state = models.LocalState.REMOTE


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Message

    conversation = factory.SubFactory(ConversationFactory)
    remote_id = factory.Sequence(lambda n: 10_000 + n)
    content = factory.Faker("sentence")
    message_type = "outgoing"
    content_type = "text"
    status = "sent"
    sender_type = "user"
    sender_remote_id = 3
    sender_name = "Priya Sharma"
    local_state = models.LocalState.REMOTE


class AttachmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Attachment

    message = factory.SubFactory(MessageFactory)
    remote_id = factory.Sequence(lambda n: 900 + n)
    file_type = "image"
    filename = "photo.png"
    mime_type = "image/png"
    extension = "png"
    data_url = factory.Sequence(lambda n: f"https://unilink.test/rails/active_storage/blobs/{n}/photo.png")
    file_size = 1024


class WebhookEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WebhookEvent

    inbox = factory.SubFactory(InboxFactory)
    inbox_key = factory.SelfAttribute("inbox.key")
    delivery_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    event = "message_created"
    body = '{"event": "message_created"}'
    valid = True
    state = models.WebhookEvent.State.PROCESSED
