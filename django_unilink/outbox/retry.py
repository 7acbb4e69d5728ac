"""Retrying by hand: the admin action and ``manage.py unilink_retry`` use these."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from ..models import Contact, Conversation, LocalState, Message
from .drain import rearm_conversations
from .policy import PENDING, requeue_failed
from .tasks import enqueue_on_commit


def retry_messages(messages: QuerySet[Message]) -> int:
    """Queue failed or stuck messages again, with what they wait for; returns how many.

    Attempts restart from zero; the last error stays, so the next attempt first looks for a
    copy an earlier attempt may have created. A backoff pause of their conversations is lifted.
    Messages already sent, or mirrored from UniLink, are left alone.
    """
    rows = list(messages.filter(local_state__in=(LocalState.FAILED, *PENDING)).values_list("pk", "conversation_id"))
    if not rows:
        return 0
    pks = [pk for pk, _ in rows]
    conversation_pks = sorted({c for _, c in rows})
    with transaction.atomic():
        requeue_failed(Message.objects.filter(pk__in=pks))
        Message.objects.filter(pk__in=pks).update(local_attempts=0)  # stuck ones too
        rearm_conversations(conversation_pks)
    for pk in conversation_pks:
        enqueue_on_commit("django_unilink.deliver_conversation", pk)
    return len(pks)


def retry_conversations(conversations: QuerySet[Conversation]) -> int:
    """Queue failed conversations (and failed messages in them) again; returns how many conversations."""
    pks = list(conversations.values_list("pk", flat=True))
    if not pks:
        return 0
    with transaction.atomic():
        requeue_failed(Message.objects.filter(conversation_id__in=pks))
        rearm_conversations(pks)
    for pk in pks:
        enqueue_on_commit("django_unilink.deliver_conversation", pk)
    return len(pks)


def retry_contacts(contacts: QuerySet[Contact]) -> int:
    """Queue failed contacts again; returns how many."""
    pks = list(
        contacts.filter(local_state__in=(LocalState.FAILED, *PENDING), remote_id__isnull=True).values_list(
            "pk", flat=True
        )
    )
    requeue_failed(Contact.objects.filter(pk__in=pks))
    Contact.objects.filter(pk__in=pks).update(local_attempts=0)  # stuck ones too
    for pk in pks:
        enqueue_on_commit("django_unilink.deliver_contact", pk)
    return len(pks)


def retry_messages_action(modeladmin: Any, request: Any, queryset: QuerySet[Message]) -> None:
    """Admin action: queue the selected failed or stuck messages again."""
    count = retry_messages(queryset)
    skipped = queryset.count() - count
    text = _("%(count)d message(s) queued again.") % {"count": count}
    if skipped:
        text += " " + _("%(skipped)d already sent or mirrored from UniLink, left alone.") % {"skipped": skipped}
    modeladmin.message_user(request, text)


retry_messages_action.short_description = _("Retry sending the selected messages")  # type: ignore[attr-defined]
retry_messages_action.allowed_permissions = ("change",)  # type: ignore[attr-defined]
