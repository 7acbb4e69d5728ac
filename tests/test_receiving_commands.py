"""``unilink_replay``, ``unilink_purge``, the replay admin action and the purge task."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_unilink import receiving
from django_unilink.models import Conversation, Message, WebhookEvent
from django_unilink.testing import factories
from django_unilink.testing.webhooks import build_payload, load_example, post_webhook, record_signals

pytestmark = pytest.mark.django_db
State = WebhookEvent.State


def call(name, *args, capture=None):
    out = io.StringIO()
    if capture is None:
        call_command(name, *args, stdout=out)
    else:
        with capture(execute=True):
            call_command(name, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def failed_event(client):
    """A message whose conversation could not be created (no contact inbox in the payload)."""
    payload = build_payload("message_created", conversation__contact_inbox=None, conversation__messages=[])
    post_webhook(client, "default", payload)
    row = WebhookEvent.objects.get()
    assert row.state == State.FAILED
    return row


def test_replay_needs_a_selection():
    with pytest.raises(CommandError, match="Say what to replay"):
        call_command("unilink_replay")


def test_replay_failed_after_the_cause_is_fixed(client, failed_event, django_capture_on_commit_callbacks):
    post_webhook(client, "default", load_example("conversation_created"))
    with record_signals("message_received") as calls:
        out = call("unilink_replay", "--failed", capture=django_capture_on_commit_callbacks)
    assert "Replayed 1: 1 processed, 0 failed, 0 invalid." in out
    assert len(calls) == 1
    failed_event.refresh_from_db()
    assert (failed_event.state, failed_event.attempts) == (State.PROCESSED, 2)


def test_replay_that_fails_again_exits_non_zero(failed_event):
    with pytest.raises(CommandError, match="1 failed"):
        call_command("unilink_replay", "--failed", stdout=io.StringIO())
    failed_event.refresh_from_db()
    assert (failed_event.state, failed_event.attempts) == (State.FAILED, 2)


def test_replay_by_ids_and_since(client, django_capture_on_commit_callbacks):
    post_webhook(client, "default", load_example("message_created_outgoing"))
    post_webhook(client, "default", load_example("message_updated"))
    first, second = WebhookEvent.objects.order_by("pk")
    WebhookEvent.objects.filter(pk=first.pk).update(received_at=timezone.now() - dt.timedelta(days=3))
    out = call("unilink_replay", "--since", "1d", "--dry-run")
    assert out.strip() == f"1 webhook event(s) would be replayed: {second.pk}"
    with record_signals() as calls:
        out = call("unilink_replay", "--ids", str(first.pk), str(second.pk), capture=django_capture_on_commit_callbacks)
    assert "Replayed 2: 2 processed" in out
    assert calls == []  # processed already: nothing changes, nothing is signalled again
    assert Message.objects.count() == 1


def test_replay_stuck_picks_rows_a_worker_never_took(client, django_capture_on_commit_callbacks):
    body = json.dumps(load_example("conversation_created"))
    row = factories.WebhookEventFactory(
        body=body,
        event="conversation_created",
        state=State.RECEIVED,
        received_at=timezone.now() - dt.timedelta(hours=1),
    )
    factories.WebhookEventFactory(
        body=body, event="conversation_created", state=State.RECEIVED
    )  # recent: a worker has it
    out = call("unilink_replay", "--stuck", capture=django_capture_on_commit_callbacks)
    assert "Replayed 1: 1 processed" in out
    row.refresh_from_db()
    assert row.state == State.PROCESSED and Conversation.objects.count() == 1


def test_replay_skips_unverified_rows(client):
    post_webhook(client, "default", load_example("message_created_outgoing"), secret="wrong")
    row = WebhookEvent.objects.get()
    out = call("unilink_replay", "--ids", str(row.pk))
    assert "Replayed 0:" in out  # unverified rows are not even selected
    assert not Message.objects.exists()


def test_admin_action(client, failed_event, django_capture_on_commit_callbacks):
    post_webhook(client, "default", load_example("conversation_created"))
    messages = []

    class FakeAdmin:
        def message_user(self, request, text, level):
            messages.append((text, level))

    with django_capture_on_commit_callbacks(execute=True):
        receiving.replay_events_action(FakeAdmin(), None, WebhookEvent.objects.filter(pk=failed_event.pk))
    assert receiving.replay_events_action.short_description == "Replay selected webhook events (process them again)"
    from django.contrib import messages as levels

    assert messages == [("Replayed: 1 processed, 0 failed, 0 skipped (unverified or invalid).", levels.SUCCESS)]
    assert Message.objects.count() == 1


def test_admin_action_reports_failures(failed_event):
    messages = []

    class FakeAdmin:
        def message_user(self, request, text, level):
            messages.append((text, level))

    receiving.replay_events_action(FakeAdmin(), None, WebhookEvent.objects.all())
    from django.contrib import messages as levels

    assert messages == [("Replayed: 0 processed, 1 failed, 0 skipped (unverified or invalid).", levels.ERROR)]


def make_aged(days_ago: float) -> WebhookEvent:
    return factories.WebhookEventFactory(received_at=timezone.now() - dt.timedelta(days=days_ago))


def test_purge_default_days_from_settings(settings):
    old, recent = make_aged(31), make_aged(29)
    assert call("unilink_purge", "--dry-run").strip() == "1 webhook event(s) older than 30 day(s) would be deleted."
    assert WebhookEvent.objects.count() == 2
    assert "Deleted 1 webhook event(s) older than 30 day(s)." in call("unilink_purge")
    assert list(WebhookEvent.objects.all()) == [recent]
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_LOG_DAYS": 7}
    assert "Deleted 1" in call("unilink_purge")
    assert not WebhookEvent.objects.filter(pk=old.pk).exists()


def test_purge_days_and_batches():
    for age in (10, 11, 12, 1):
        make_aged(age)
    assert receiving.purge_webhook_events(5, batch_size=2) == 3
    assert WebhookEvent.objects.count() == 1
    assert receiving.purge_webhook_log(0) == 1
    with pytest.raises(CommandError, match="0 or more"):
        call_command("unilink_purge", "--days", "-1")


def test_purge_keeps_the_mirror(client):
    post_webhook(client, "default", load_example("message_created_outgoing"))
    WebhookEvent.objects.update(received_at=timezone.now() - dt.timedelta(days=90))
    call("unilink_purge")
    assert not WebhookEvent.objects.exists()
    assert Message.objects.count() == 1
