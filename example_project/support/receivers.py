"""How this site reacts to UniLink: the django-unilink signal receivers.

This module is the example of host code. When UniLink posts a webhook, django-unilink verifies
it, mirrors the data in its own models (Contact, Conversation, Message...) and then sends a
signal. The receivers below decide what the *visitor* sees, by writing ChatLine rows, the only
rows the chat page shows (support/models.py).

When do they run? After the mirrored data is committed: in the Celery worker when
``UNILINK["WEBHOOK_PROCESSING"]`` is ``"celery"`` (this site's default), in the web request
that received the webhook when it is ``"inline"``. So they must not rely on a request, and they
should be quick and idempotent (django-unilink already drops duplicate deliveries; the
``get_or_create`` calls make a repeated signal harmless anyway).

A receiver that raises does not lose the mirrored data: django-unilink records the error on the
WebhookEvent row, and staff can replay it from the admin.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from django_unilink.models import Conversation, Message
from django_unilink.signals import (
    conversation_status_changed,
    message_delivery_failed,
    message_received,
    message_updated,
)
from django_unilink.webhooks import UnilinkEvent

from .models import ChatLine

logger = logging.getLogger(__name__)


@receiver(message_received)
def show_reply(sender: type[Message], message: Message, event: UnilinkEvent, **kwargs: Any) -> None:
    """A message this site did not write arrived: an agent's reply, a bot's, or a private note."""
    if message.private:
        # A private note: agents talking among themselves. It must never reach the visitor.
        return
    if message.message_type == "incoming":
        # Written as the contact, but not from this page (another integration, for example).
        kind, author = ChatLine.Kind.VISITOR, "You"
    else:  # "outgoing" (an agent or bot answering) or "template"
        kind, author = ChatLine.Kind.AGENT, message.sender_name or "Support"
    ChatLine.objects.get_or_create(
        message=message,
        defaults={
            "conversation": message.conversation,
            "kind": kind,
            "author": author,
            "text": message.content,
            "created": message.created_at,  # the platform's time (see announce_status)
        },
    )


@receiver(message_updated)
def follow_deletion(sender: type[Message], message: Message, event: UnilinkEvent, **kwargs: Any) -> None:
    """An agent deleted a message in UniLink: take it off the visitor's page too."""
    if message.is_deleted:
        ChatLine.objects.filter(message=message).update(text="This message was deleted.")


@receiver(conversation_status_changed)
def announce_status(
    sender: type[Conversation],
    conversation: Conversation,
    previous_status: str | None,
    event: UnilinkEvent,
    **kwargs: Any,
) -> None:
    """Tell the visitor when agents resolve (or reopen) their conversation."""
    if conversation.status == "resolved":
        text = "This conversation was marked as resolved. Write again if you need more help."
    elif conversation.status == "open" and previous_status in ("resolved", "snoozed", "pending"):
        text = "This conversation was reopened."
    else:
        return
    # UniLink builds each webhook when it sends it, from the state of that moment: the delivery
    # of a reply written just before "Resolve" may already carry the resolved conversation, and
    # announce the change before the reply itself. Lines are therefore ordered by the
    # platform's times, not by arrival: here the time of the conversation's last change.
    ChatLine.objects.create(
        conversation=conversation,
        kind=ChatLine.Kind.NOTICE,
        text=text,
        created=conversation.updated_at or event.occurred_at,
    )


@receiver(message_delivery_failed)
def mark_undelivered(sender: type[Message], message: Message, error: Exception, **kwargs: Any) -> None:
    """UniLink refused a visitor's message for good: show it as not delivered."""
    logger.warning("Message %s could not be delivered: %s", message.pk, error)
    ChatLine.objects.filter(message=message).update(failed=True)
