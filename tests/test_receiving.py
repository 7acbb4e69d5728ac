"""Processing rules: echoes, ordering, idempotency, failures, receivers, and how processing is run."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from celery import Celery
from celery import signals as celery_signals

from django_unilink import receiving, signals
from django_unilink.models import Contact, ContactInbox, Conversation, LocalState, Message, WebhookEvent
from django_unilink.testing import factories
from django_unilink.testing.webhooks import build_payload, load_example, post_webhook, record_signals

pytestmark = pytest.mark.django_db

SOURCE_ID = "a3f6c1d2-5b7e-4f90-9c3a-1e2d4b6f8a01"
UTC = dt.UTC
State = WebhookEvent.State


def post(client, payload, **kwargs):
    payload = load_example(payload) if isinstance(payload, str) else payload
    response = post_webhook(client, "default", payload, **kwargs)
    assert response.status_code == 200, response.content
    return response


def names(calls, *, skip=("webhook_received",)):
    return [c.name for c in calls if c.name not in skip]


@pytest.fixture
def site_conversation(db):
    """A conversation this site started (remote id known), as the outbox leaves it."""
    inbox = factories.InboxFactory()
    contact = factories.ContactFactory(account=inbox.account, remote_id=42, identifier="unilink-user-1001")
    contact_inbox = factories.ContactInboxFactory(contact=contact, inbox=inbox, source_id=SOURCE_ID, remote_id=55)
    return factories.ConversationFactory(
        inbox=inbox,
        contact_inbox=contact_inbox,
        remote_id=12,
        local_state=LocalState.SENT,
        custom_attributes={"unilink_thread_id": "thr_8K2M4Q"},
        updated_at=None,
    )


@pytest.fixture
def pending_conversation(db):
    """A conversation this site started whose API answer has not been stored yet (no remote id)."""
    inbox = factories.InboxFactory()
    contact = factories.ContactFactory(account=inbox.account, remote_id=None, identifier="unilink-user-1001")
    contact_inbox = factories.ContactInboxFactory(contact=contact, inbox=inbox, source_id=SOURCE_ID, remote_id=None)
    return factories.ConversationFactory(
        inbox=inbox, contact_inbox=contact_inbox, remote_id=None, local_state=LocalState.SENDING, updated_at=None
    )


# -- echoes ------------------------------------------------------------------------------------------


def test_echo_of_our_message_updates_our_row_and_sends_nothing(client, site_conversation):
    ours = factories.MessageFactory(
        conversation=site_conversation,
        remote_id=9876,
        source_id="unilink-msg-7d2e91",
        message_type="incoming",
        local_state=LocalState.SENT,
        status="",
    )
    with record_signals() as calls:
        post(client, "message_created_incoming")
    assert names(calls) == []
    assert Message.objects.count() == 1
    ours.refresh_from_db()
    assert (ours.status, ours.local_state, ours.content) == (
        "sent",
        LocalState.SENT,
        "Here is a photo of the damaged item",
    )


def test_echo_before_the_api_response_links_conversation_and_message(client, pending_conversation):
    ours = factories.MessageFactory(
        conversation=pending_conversation,
        remote_id=None,
        source_id="unilink-msg-7d2e91",
        message_type="incoming",
        local_state=LocalState.SENDING,
        status="",
    )
    with record_signals() as calls:
        post(client, "message_created_incoming")
    assert names(calls) == []  # no conversation_created, no message_received: both are ours
    assert (Conversation.objects.count(), Message.objects.count(), Contact.objects.count()) == (1, 1, 1)
    pending_conversation.refresh_from_db()
    ours.refresh_from_db()
    assert (pending_conversation.remote_id, pending_conversation.local_state) == (12, LocalState.SENDING)
    assert (ours.remote_id, ours.local_state, ours.conversation) == (9876, LocalState.SENDING, pending_conversation)
    assert ours.created_at == dt.datetime(2026, 6, 18, 9, 15, 42, 318000, tzinfo=UTC)  # the platform's time now


def test_conversation_created_before_the_api_response_claims_the_pending_conversation(client, pending_conversation):
    with record_signals() as calls:
        post(client, "conversation_created")
    assert names(calls) == []
    pending_conversation.refresh_from_db()
    assert pending_conversation.remote_id == 12
    assert Conversation.objects.count() == 1
    # The contact this site created is linked too (matched by its identifier), not duplicated.
    contact = Contact.objects.get()
    assert (contact.remote_id, contact.identifier) == (42, "unilink-user-1001")


def test_claim_by_the_outboxs_key_wins_over_ambiguity(client, pending_conversation):
    other = factories.ConversationFactory(
        inbox=pending_conversation.inbox,
        contact_inbox=pending_conversation.contact_inbox,
        remote_id=None,
        local_state=LocalState.QUEUED,
        additional_attributes={"django_unilink_key": "k-2"},
    )
    post(client, build_payload("conversation_created", additional_attributes={"django_unilink_key": "k-2"}))
    other.refresh_from_db()
    pending_conversation.refresh_from_db()
    assert (other.remote_id, pending_conversation.remote_id) == (12, None)


def test_two_pending_conversations_on_one_contact_inbox_are_not_guessed(client, pending_conversation):
    factories.ConversationFactory(
        inbox=pending_conversation.inbox,
        contact_inbox=pending_conversation.contact_inbox,
        remote_id=None,
        local_state=LocalState.QUEUED,
    )
    with record_signals() as calls:
        post(client, "conversation_created")
    assert names(calls) == ["conversation_created"]
    assert Conversation.objects.filter(remote_id=12, local_state=LocalState.REMOTE).count() == 1
    assert Conversation.objects.filter(remote_id__isnull=True).count() == 2


def test_message_with_a_reused_source_id_is_kept_separately(client, site_conversation):
    factories.MessageFactory(conversation=site_conversation, remote_id=555, source_id="unilink-msg-7d2e91")
    with record_signals("message_received") as calls:
        post(client, "message_created_incoming")
    assert len(calls) == 1
    assert calls[0].kwargs["message"].source_id is None
    assert Message.objects.count() == 2


# -- ordering ------------------------------------------------------------------------------------------


def test_deletion_before_creation(client):
    with record_signals() as calls:
        post(client, "message_updated")
        post(client, "message_created_outgoing")
    # New to us but already deleted: nothing to show, so no message_received; the late create changes nothing.
    assert names(calls) == ["conversation_created"]
    message = Message.objects.get()
    assert message.is_deleted and message.content == "This message was deleted"
    assert message.updated_at == dt.datetime(2026, 6, 18, 9, 20, 31, 640000, tzinfo=UTC)


def test_update_before_creation_signals_the_message_once(client):
    updated = build_payload("message_updated", content="Sorry about that", content_attributes={})
    with record_signals() as calls:
        post(client, updated)
        post(client, "message_created_outgoing")
    assert names(calls) == ["conversation_created", "message_received"]
    assert Message.objects.get().content == "Sorry about that"


def test_deleted_message_stays_deleted_without_timestamps(client):
    post(client, "message_created_outgoing")
    deleted = build_payload("message_updated", conversation__messages=[])
    post(client, deleted)
    late = build_payload("message_updated", content="Edited", content_attributes={}, conversation__messages=[])
    with record_signals() as calls:
        post(client, late)
    assert names(calls) == []
    assert Message.objects.get().is_deleted


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        ("read", "delivered", "read"),
        ("read", "sent", "read"),
        ("delivered", "sent", "delivered"),
        ("sent", "delivered", "delivered"),
        ("delivered", "read", "read"),
        ("sent", "failed", "failed"),
        ("delivered", "failed", "delivered"),
    ],
)
def test_status_never_moves_backwards_without_a_newer_timestamp(client, site_conversation, current, incoming, expected):
    factories.MessageFactory(
        conversation=site_conversation,
        remote_id=9877,
        status=current,
        updated_at=dt.datetime(2026, 6, 18, 9, 20, 31, 640000, tzinfo=UTC),
    )
    payload = build_payload(
        "message_updated",
        content_attributes={},
        conversation__messages__0__status=incoming,
        conversation__messages__0__updated_at="2026-06-18T09:20:31.640Z",  # same time: no proof of newer
    )
    post(client, payload)
    assert Message.objects.get(remote_id=9877).status == expected


def test_newer_timestamp_may_move_status_back_to_sent_after_a_retry(client, site_conversation):
    factories.MessageFactory(
        conversation=site_conversation,
        remote_id=9877,
        status="failed",
        content_attributes={"external_error": "500 Internal Server Error"},
        updated_at=dt.datetime(2026, 6, 18, 9, 20, 0, tzinfo=UTC),
    )
    payload = build_payload(
        "message_updated",
        content_attributes={},
        conversation__messages__0__status="sent",
        conversation__messages__0__updated_at="2026-06-18T09:21:00.000Z",
    )
    with record_signals("message_updated") as calls:
        post(client, payload)
    message = Message.objects.get(remote_id=9877)
    assert (message.status, message.external_error) == ("sent", "")
    assert len(calls) == 1


def test_older_message_update_after_a_newer_one_is_ignored(client, site_conversation):
    factories.MessageFactory(
        conversation=site_conversation,
        remote_id=9877,
        content="This message was deleted",
        content_attributes={"deleted": True},
        status="delivered",
        updated_at=dt.datetime(2026, 6, 18, 9, 20, 31, 640000, tzinfo=UTC),
    )
    older = build_payload(
        "message_updated",
        content="Sorry",
        content_attributes={},
        conversation__messages__0__status="sent",
        conversation__messages__0__updated_at="2026-06-18T09:17:03.027Z",
    )
    with record_signals("message_updated", "message_received") as calls:
        post(client, older)
    assert calls == []
    message = Message.objects.get(remote_id=9877)
    assert (message.content, message.status, message.is_deleted) == ("This message was deleted", "delivered", True)


def test_failure_report_marks_our_message_failed(client, site_conversation):
    ours = factories.MessageFactory(
        conversation=site_conversation,
        remote_id=9876,
        source_id="unilink-msg-7d2e91",
        message_type="incoming",
        local_state=LocalState.SENT,
        status="sent",
    )
    report = build_payload(
        "message_created_incoming",
        event="message_updated",
        content_attributes={"external_error": "Net::ReadTimeout with #<TCPSocket:(closed)>"},
        conversation__messages=[],
    )
    with record_signals() as calls:
        post(client, report)
    ours.refresh_from_db()
    assert (ours.status, ours.external_error) == ("failed", "Net::ReadTimeout with #<TCPSocket:(closed)>")
    assert names(calls) == ["message_updated"]
    assert calls[-1].kwargs["message"] == ours


def test_older_conversation_state_after_a_newer_one_is_ignored(client):
    post(client, "conversation_status_changed")
    with record_signals() as calls:
        post(client, "conversation_updated")  # older updated_at
    assert names(calls) == []
    assert Conversation.objects.get().status == "resolved"


def test_status_change_reported_once_whichever_event_brings_it_first(client):
    """conversation_updated and conversation_status_changed come from one save, in any order."""
    post(client, "conversation_created")
    when = 1781774462.884103
    updated = build_payload(
        "conversation_updated",
        status="resolved",
        updated_at=when,
        changed_attributes=[{"status": {"previous_value": "open", "current_value": "resolved"}}],
    )
    status_changed = build_payload("conversation_status_changed", updated_at=when)
    with record_signals() as calls:
        post(client, status_changed)
        post(client, updated)
    assert names(calls) == ["conversation_updated", "conversation_status_changed"]
    status_calls = [c for c in calls if c.name == "conversation_status_changed"]
    assert status_calls[0].kwargs["previous_status"] == "open"


def test_status_reopened_by_a_message_event_is_reported(client):
    post(client, "conversation_status_changed")
    reopened = build_payload(
        "message_created_incoming",
        id=9990,
        source_id=None,
        conversation__status="open",
        conversation__updated_at=1781774500.0,
    )
    with record_signals() as calls:
        post(client, reopened)
    assert names(calls) == ["conversation_updated", "conversation_status_changed", "message_received"]
    assert [c.kwargs["previous_status"] for c in calls if c.name == "conversation_status_changed"] == ["resolved"]


# -- idempotency and replay ------------------------------------------------------------------------


def test_replay_of_processed_events_changes_nothing_and_signals_nothing(client, django_capture_on_commit_callbacks):
    for name in ("conversation_created", "message_created_outgoing", "message_updated", "conversation_status_changed"):
        post(client, name)
    before = list(Message.objects.values()) + list(Conversation.objects.values())
    with record_signals() as calls, django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = receiving.replay(WebhookEvent.objects.order_by("pk"))
    assert callbacks == []  # nothing to send at all
    assert (result.processed, result.failed, result.skipped) == (4, 0, 0)
    assert calls == []
    after = list(Message.objects.values()) + list(Conversation.objects.values())
    assert [{k: v for k, v in row.items() if k != "local_updated"} for row in after] == [
        {k: v for k, v in row.items() if k != "local_updated"} for row in before
    ]
    assert set(WebhookEvent.objects.values_list("attempts", flat=True)) == {2}


def test_typing_is_not_signalled_again_on_replay(client, django_capture_on_commit_callbacks):
    post(client, "conversation_typing_on")
    with record_signals("typing") as calls, django_capture_on_commit_callbacks(execute=True):
        receiving.replay(WebhookEvent.objects.all())
    assert calls == []


def test_processed_row_is_not_processed_again_without_replay(client):
    post(client, "message_created_outgoing")
    row = WebhookEvent.objects.get()
    assert receiving.process_webhook_event(row.pk) == State.PROCESSED
    assert WebhookEvent.objects.get().attempts == 1
    assert receiving.process_webhook_event(10**9) == "missing"


def test_unverified_rows_are_never_processed(client):
    post_webhook(client, "default", load_example("message_created_outgoing"), secret="wrong")
    result = receiving.replay(WebhookEvent.objects.all())
    assert (result.processed, result.skipped) == (0, 1)
    assert not Message.objects.exists()


# -- failures ----------------------------------------------------------------------------------------


def unknown_conversation_without_contact_inbox():
    payload = build_payload("message_created", conversation__contact_inbox=None, conversation__messages=[])
    return payload


def test_processing_failure_answers_200_keeps_the_row_and_writes_nothing(client, caplog):
    with caplog.at_level(logging.ERROR, logger="django_unilink"):
        response = post_webhook(client, "default", unknown_conversation_without_contact_inbox())
    assert (response.status_code, response.json()) == (200, {"status": "failed"})
    row = WebhookEvent.objects.get()
    assert row.state == State.FAILED and row.attempts == 1
    assert "ProcessingError" in row.last_error and "unilink_sync --inbox default --conversation 12" in row.last_error
    assert "Traceback" in row.traceback
    assert not (Message.objects.exists() or Conversation.objects.exists() or Contact.objects.exists())
    assert f"webhook event {row.pk} failed with ProcessingError" in caplog.text
    assert "Priya" not in caplog.text


def test_failed_event_replays_once_the_cause_is_gone(client, django_capture_on_commit_callbacks):
    post_webhook(client, "default", unknown_conversation_without_contact_inbox())
    row = WebhookEvent.objects.get()
    post(client, "conversation_created")
    with record_signals() as calls, django_capture_on_commit_callbacks(execute=True):
        result = receiving.replay([row])
    assert (result.processed, result.failed) == (1, 0)
    assert names(calls) == ["conversation_updated", "message_received"]
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error, row.traceback) == (State.PROCESSED, 2, "", "")


def test_a_raising_receiver_keeps_the_data_and_is_recorded(client, caplog):
    seen = []

    def broken(sender, message, **kwargs):
        raise RuntimeError("push service down for jane.doe@example.com")

    def healthy(sender, message, **kwargs):
        seen.append(message.remote_id)

    signals.message_received.connect(broken)
    signals.message_received.connect(healthy)
    try:
        with caplog.at_level(logging.ERROR, logger="django_unilink"):
            response = post(client, "message_created_outgoing")
    finally:
        signals.message_received.disconnect(broken)
        signals.message_received.disconnect(healthy)
    assert response.json() == {"status": "processed"}
    assert seen == [9877]
    assert Message.objects.filter(remote_id=9877).exists()
    row = WebhookEvent.objects.get()
    assert row.state == State.PROCESSED
    where = "tests.test_receiving.test_a_raising_receiver_keeps_the_data_and_is_recorded.<locals>.broken"
    assert row.last_error.startswith(f"Receiver {where} of message_received raised RuntimeError")
    assert "push service down" in row.traceback and "Traceback" in row.traceback
    assert "broken of message_received raised RuntimeError" in caplog.text
    assert "jane.doe" not in "".join(r.getMessage() for r in caplog.records if r.name.startswith("django_unilink"))


def test_a_raising_webhook_received_receiver_is_recorded_and_processing_goes_on(client):
    def broken(sender, webhook_event, **kwargs):
        raise ValueError("audit store down")

    signals.webhook_received.connect(broken)
    try:
        response = post(client, "message_created_outgoing")
    finally:
        signals.webhook_received.disconnect(broken)
    assert response.json() == {"status": "processed"}
    row = WebhookEvent.objects.get()
    assert row.state == State.PROCESSED and Message.objects.count() == 1
    assert "of webhook_received raised ValueError" in row.last_error and "audit store down" in row.traceback


def test_unknown_event_is_ignored_logged_and_announced(client, caplog):
    with caplog.at_level(logging.INFO, logger="django_unilink"), record_signals() as calls:
        response = post(client, {"event": "conversation_merged", "id": 1})
    assert response.json() == {"status": "ignored"}
    assert WebhookEvent.objects.get().state == State.IGNORED
    assert [c.name for c in calls] == ["webhook_received"]
    assert "unknown event 'conversation_merged'" in caplog.text


def test_unknown_event_with_a_long_name_fits_the_log_column(client):
    # No serializer bounds an unknown event's name; PostgreSQL would refuse >100 characters (a 500).
    response = post(client, {"event": "x" * 300, "id": 1})
    assert response.json() == {"status": "ignored"}
    assert WebhookEvent.objects.get().event == "x" * 100


def test_contact_data_is_refreshed_from_newer_conversation_data(client):
    post(client, "conversation_created")
    renamed = build_payload(
        "conversation_updated", meta__sender__name="Jane Roe", meta__sender__email="jane@roe.example"
    )
    post(client, renamed)
    contact = Contact.objects.get()
    assert (contact.name, contact.email, contact.identifier) == ("Jane Roe", "jane@roe.example", "unilink-user-1001")
    assert ContactInbox.objects.count() == 1


# -- how processing is run ---------------------------------------------------------------------------


@pytest.fixture
def celery_app():
    """A Celery app made current for the test, restored after."""
    from celery import current_app

    previous = current_app._get_current_object()
    apps = []

    def make(**conf):
        app = Celery("unilink_receiving_tests", set_as_current=True)
        app.conf.update(conf)
        app.set_current()
        apps.append(app)
        return app

    yield make
    previous.set_current()


@pytest.fixture
def published():
    sent = []

    def record(sender=None, body=None, headers=None, **kwargs):
        sent.append((sender, body, headers))

    celery_signals.before_task_publish.connect(record)
    yield sent
    celery_signals.before_task_publish.disconnect(record)


@pytest.mark.parametrize(
    ("setting", "conf", "expected"),
    [
        ("inline", {"broker_url": "memory://"}, "inline"),
        ("celery", {}, "celery"),
        ("auto", {"broker_url": "memory://"}, "celery"),
        ("auto", {"broker_url": "memory://", "task_always_eager": True}, "inline"),
        ("auto", {}, "inline"),
    ],
)
def test_processing_mode(settings, celery_app, setting, conf, expected):
    celery_app(**conf)
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_PROCESSING": setting}
    assert receiving.processing_mode() == expected


def test_bad_processing_setting_names_the_key(settings):
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_PROCESSING": "sometimes"}
    with pytest.raises(Exception, match=r"UNILINK\['WEBHOOK_PROCESSING'\]"):
        receiving.processing_mode()


def test_celery_mode_stores_queues_the_pk_only_and_answers_at_once(
    client, settings, celery_app, published, django_capture_on_commit_callbacks
):
    celery_app(broker_url="memory://")
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_PROCESSING": "celery", "CELERY_QUEUE": "unilink"}
    with record_signals() as calls:
        response = post(client, "message_created_outgoing")
    assert response.json() == {"status": "queued"}
    row = WebhookEvent.objects.get()
    assert row.state == State.RECEIVED
    assert not Message.objects.exists()
    assert [c.name for c in calls] == ["webhook_received"]
    assert len(published) == 1
    task_name, body, headers = published[0]
    assert task_name == "django_unilink.process_webhook_event"
    assert tuple(body[0]) == (row.pk,) and body[1] == {}
    assert headers["argsrepr"] == f"({row.pk},)"
    # What the worker then runs:
    with record_signals() as calls, django_capture_on_commit_callbacks(execute=True):
        assert receiving.process_webhook_event(row.pk) == State.PROCESSED
    assert names(calls) == ["conversation_created", "message_received"]


def test_broker_down_falls_back_to_inline_processing(client, settings, celery_app, caplog):
    celery_app(broker_url="redis://127.0.0.1:1/0", broker_connection_timeout=1)
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_PROCESSING": "celery"}
    with caplog.at_level(logging.WARNING, logger="django_unilink"):
        response = post(client, "message_created_outgoing")
    assert response.json() == {"status": "queued"}
    assert WebhookEvent.objects.get().state == State.PROCESSED
    assert Message.objects.count() == 1
    assert "processing it inline" in caplog.text


def test_eager_celery_runs_the_task_after_commit(client, settings, celery_app):
    celery_app(task_always_eager=True)
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_PROCESSING": "celery"}
    post(client, "message_created_outgoing")
    assert WebhookEvent.objects.get().state == State.PROCESSED
