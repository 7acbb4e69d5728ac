"""Retrying by hand: ``manage.py unilink_retry`` and the admin action."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.contrib.admin.sites import AdminSite
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from django_unilink import outbox, services
from django_unilink.models import Contact, Conversation, LocalState, Message
from django_unilink.testing.emulator import Emulator
from tests.outbox_support import drain, remote_by_source, running_emulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def emulator(settings: Any) -> Iterator[Emulator]:
    with running_emulator(settings) as emu:
        yield emu


def failed_message(conversation: Conversation, text: str) -> Message:
    message = services.send_message(conversation, text)
    Message.objects.filter(pk=message.pk).update(
        local_state=LocalState.FAILED, local_error="HTTP 503", local_attempts=11
    )
    return message


@pytest.fixture
def conversation(emulator) -> Conversation:
    contact = services.ensure_contact(identifier="retry-1", name="Rita")
    conversation = services.start_conversation(contact)
    drain(conversation.pk)
    conversation.refresh_from_db()
    return conversation


def run(*args: str) -> str:
    out = StringIO()
    call_command("unilink_retry", *args, stdout=out)
    return out.getvalue()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        call_command("unilink_retry", "--help")
    text = capsys.readouterr().out
    for option in ("--failed", "--stuck", "--since", "--conversation", "--inbox", "--dry-run"):
        assert option in text
    assert "local id" in text and "STUCK_AFTER" in text and "source_id" in text


def test_without_a_selection_it_refuses():
    with pytest.raises(CommandError, match="--failed, --stuck, or both"):
        run()


def test_failed_messages_are_queued_again_and_sent_once(conversation, emulator):
    message = failed_message(conversation, "hello")
    assert run("--failed") == "Queued again: 1 message(s), 0 conversation(s), 0 contact(s).\n"
    message.refresh_from_db()
    assert (message.local_state, message.local_attempts, message.local_error) == (LocalState.QUEUED, 0, "HTTP 503")
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT and len(remote_by_source(emulator, message.source_id)) == 1
    assert run("--failed") == "Nothing to retry.\n"


def test_dry_run_changes_nothing(conversation):
    message = failed_message(conversation, "hello")
    assert run("--failed", "--dry-run") == "Would queue again: 1 message(s), 0 conversation(s), 0 contact(s).\n"
    message.refresh_from_db()
    assert message.local_state == LocalState.FAILED


def test_since_and_conversation_narrow_the_selection(conversation, emulator):
    other = services.start_conversation(conversation.contact)
    old = failed_message(conversation, "old")
    Message.objects.filter(pk=old.pk).update(local_created=timezone.now() - dt.timedelta(days=3))
    recent = failed_message(conversation, "recent")
    elsewhere = failed_message(other, "elsewhere")
    assert run("--failed", "--since", "1d", "--conversation", str(conversation.pk)).startswith(
        "Queued again: 1 message(s)"
    )
    states = dict(Message.objects.values_list("pk", "local_state"))
    assert (states[old.pk], states[recent.pk], states[elsewhere.pk]) == (
        LocalState.FAILED,
        LocalState.QUEUED,
        LocalState.FAILED,
    )


def test_bad_since_and_unknown_conversation_are_clear_errors(conversation):
    with pytest.raises(CommandError, match="since: 'yesterday'"):
        run("--failed", "--since", "yesterday")
    with pytest.raises(CommandError, match="No conversation with local id 999999"):
        run("--failed", "--conversation", "999999")


def test_stuck_rows_are_requeued_and_a_failed_conversation_with_its_contact(emulator, settings):
    settings.UNILINK = {**settings.UNILINK, "STUCK_AFTER": 60}
    contact = services.ensure_contact(identifier="stuck-1")
    conversation = services.start_conversation(contact)
    message = services.send_message(conversation, "hello")
    Contact.objects.filter(pk=contact.pk).update(local_state=LocalState.FAILED, local_error="HTTP 500")
    Conversation.objects.filter(pk=conversation.pk).update(local_state=LocalState.FAILED)
    Message.objects.filter(pk=message.pk).update(
        local_state=LocalState.SENDING, local_state_changed=timezone.now() - dt.timedelta(minutes=5)
    )
    out = run("--failed", "--stuck")
    assert out == "Queued again: 1 message(s), 1 conversation(s), 1 contact(s).\n"
    drain(conversation.pk)
    message.refresh_from_db()
    contact.refresh_from_db()
    assert message.local_state == contact.local_state == LocalState.SENT
    assert len(emulator.contacts()) == 1 and len(emulator.messages()) == 1


def test_a_failed_contact_without_conversation_is_requeued(emulator):
    contact = services.ensure_contact(identifier="lonely-1")
    Contact.objects.filter(pk=contact.pk).update(local_state=LocalState.FAILED, local_error="HTTP 500")
    assert run("--failed", "--inbox", "default") == "Queued again: 0 message(s), 0 conversation(s), 1 contact(s).\n"
    outbox.deliver_contact.apply(args=(contact.pk,))
    contact.refresh_from_db()
    assert contact.local_state == LocalState.SENT


def test_admin_action_requeues_the_selection_and_says_so(conversation, admin_user):
    from django.contrib.admin import ModelAdmin

    failed = failed_message(conversation, "failed")
    sent_already = services.send_message(conversation, "fine")
    drain(conversation.pk)
    request = RequestFactory().post("/admin/django_unilink/message/")
    request.user = admin_user
    request.session = {}
    request._messages = FallbackStorage(request)
    modeladmin = ModelAdmin(Message, AdminSite())
    outbox.retry_messages_action(modeladmin, request, Message.objects.filter(pk__in=[failed.pk, sent_already.pk]))
    failed.refresh_from_db()
    assert failed.local_state == LocalState.QUEUED
    assert [str(m) for m in get_messages(request)] == [
        "1 message(s) queued again. 1 already sent or mirrored from UniLink, left alone."
    ]
    assert str(outbox.retry_messages_action.short_description) == "Retry sending the selected messages"
