"""The outbox against the emulator (a real HTTP server on loopback), one drain at a time.

The task body (:func:`outbox.drain_conversation`) runs in the test's process; tests with a real
Celery worker are in test_worker.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from django_unilink import outbox, services, signals
from django_unilink.client import UnilinkClient
from django_unilink.exceptions import RateLimitedError
from django_unilink.models import Contact, ContactInbox, Conversation, LocalState, Message
from django_unilink.outbox import CONVERSATION_KEY
from django_unilink.testing.emulator import Emulator
from django_unilink.testing.factories import ConversationFactory
from tests.outbox_support import TOKEN, drain, posts, remote_by_source, running_emulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def emulator(settings: Any) -> Iterator[Emulator]:
    with running_emulator(settings) as emu:
        yield emu


class Recorder:
    """Collects a signal's keyword arguments."""

    def __init__(self, signal: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self.signal = signal
        signal.connect(self.receive, dispatch_uid=id(self))

    def receive(self, sender: Any, **kwargs: Any) -> None:
        self.calls.append({"sender": sender, **kwargs})

    def close(self) -> None:
        self.signal.disconnect(dispatch_uid=id(self))


@pytest.fixture
def sent() -> Any:
    recorder = Recorder(signals.message_sent)
    yield recorder
    recorder.close()


@pytest.fixture
def failed() -> Any:
    recorder = Recorder(signals.message_delivery_failed)
    yield recorder
    recorder.close()


def seed(identifier: str = "user-42", **contact: Any) -> tuple[Contact, Conversation]:
    person = services.ensure_contact(identifier=identifier, name="Alice Martin", **contact)
    return person, services.start_conversation(person)


def client_for(emu: Any) -> UnilinkClient:
    return UnilinkClient(emu.url, 1, TOKEN)


# -- the seed flow ------------------------------------------------------------------------------


def test_seed_flow_creates_contact_conversation_and_message_and_stores_remote_ids(emulator, sent):
    contact, conversation = seed(email="alice@example.com")
    message = services.send_message(conversation, "My parcel has not arrived.")
    assert drain(conversation.pk).error is None

    contact.refresh_from_db()
    conversation.refresh_from_db()
    message.refresh_from_db()
    [remote_contact] = emulator.contacts()
    [remote_conversation] = emulator.conversations()
    [remote_message] = emulator.messages(remote_conversation["id"])
    assert (contact.remote_id, contact.local_state) == (remote_contact["id"], LocalState.SENT)
    assert contact.identifier == remote_contact["identifier"] == "user-42"
    source_id = ContactInbox.objects.get(contact=contact).source_id
    assert [ci["source_id"] for ci in remote_contact["contact_inboxes"]] == [source_id]
    assert emulator.conversation_source_id(remote_conversation["id"]) == source_id
    assert (conversation.remote_id, conversation.local_state) == (remote_conversation["id"], LocalState.SENT)
    assert (
        remote_conversation["additional_attributes"][CONVERSATION_KEY]
        == conversation.additional_attributes[CONVERSATION_KEY]
    )
    assert (message.remote_id, message.local_state, message.status) == (remote_message["id"], LocalState.SENT, "sent")
    assert remote_message["source_id"] == message.source_id
    assert remote_message["message_type"] == 0 and message.message_type == "incoming"
    assert remote_message["content"] == "My parcel has not arrived."
    assert message.local_attempts == 1 and message.local_error == ""
    assert [(c["sender"], c["message"].pk) for c in sent.calls] == [(Message, message.pk)]


def test_outgoing_private_note_and_attachments_are_posted_as_such(emulator):
    _, conversation = seed()
    services.send_message(conversation, "Customer is VIP", message_type="outgoing", private=True)
    services.send_message(conversation, "", attachments=[("label.pdf", b"%PDF-1.4 fake", "application/pdf")])
    drain(conversation.pk)
    conversation.refresh_from_db()
    note, upload = emulator.messages(conversation.remote_id)
    assert (note["message_type"], note["private"]) == (1, True)
    assert [(a["file_type"], a["extension"]) for a in upload["attachments"]] == [("file", "pdf")]


def test_existing_remote_contact_is_found_and_linked_not_duplicated(emulator):
    existing = client_for(emulator).create_contact(name="Alice", identifier="user-42", email="alice@example.com")
    contact, conversation = seed(identifier="user-42")
    services.send_message(conversation, "hello")
    drain(conversation.pk)
    contact.refresh_from_db()
    assert contact.remote_id == existing["contact"]["id"] and contact.local_state == LocalState.SENT
    [remote] = emulator.contacts()
    assert ContactInbox.objects.get(contact=contact).source_id in [ci["source_id"] for ci in remote["contact_inboxes"]]
    assert len(emulator.messages()) == 1


def test_contact_existing_by_email_keeps_our_identifier(emulator):
    client_for(emulator).create_contact(name="Alice", email="alice@example.com")
    contact, conversation = seed(identifier="user-42", email="ALICE@example.com")
    drain(conversation.pk)
    contact.refresh_from_db()
    assert contact.local_state == LocalState.SENT and contact.identifier == "user-42"
    assert services.ensure_contact(identifier="user-42").pk == contact.pk
    assert len(emulator.contacts()) == 1


def test_contact_existing_with_another_identifier_fails_with_a_clear_error(emulator, failed):
    client_for(emulator).create_contact(name="Alice", identifier="crm-1", email="alice@example.com")
    contact, conversation = seed(identifier="user-42", email="alice@example.com")
    message = services.send_message(conversation, "hello")
    drain(conversation.pk)
    contact.refresh_from_db()
    message.refresh_from_db()
    assert contact.local_state == LocalState.FAILED
    assert "identifier 'crm-1', not 'user-42'" in contact.local_error
    assert message.local_state == LocalState.FAILED and "crm-1" in message.local_error
    assert [c["message"].pk for c in failed.calls] == [message.pk]
    assert emulator.conversations() == []


def test_ensure_contact_task_alone_creates_the_contact(emulator):
    contact = services.ensure_contact(identifier="user-7", phone_number="+14155550123")
    outbox.deliver_contact.apply(args=(contact.pk,))
    contact.refresh_from_db()
    [remote] = emulator.contacts()
    assert (contact.remote_id, contact.local_state, remote["phone_number"]) == (
        remote["id"],
        LocalState.SENT,
        "+14155550123",
    )


def test_a_contact_in_a_second_inbox_is_linked_with_its_own_source_id(emulator, settings):
    emulator.add_inbox(9)
    settings.UNILINK = {**settings.UNILINK, "INBOXES": {"sales": {"INBOX_ID": 9}}}
    contact = services.ensure_contact(identifier="user-7")
    outbox.deliver_contact.apply(args=(contact.pk,))
    again = services.ensure_contact(identifier="user-7", inbox="sales")
    assert again.pk == contact.pk
    outbox.deliver_contact.apply(args=(contact.pk,))
    [remote] = emulator.contacts()
    sources = {ci.inbox.remote_id: ci.source_id for ci in ContactInbox.objects.filter(contact=contact)}
    assert sorted((ci["inbox"]["id"], ci["source_id"]) for ci in remote["contact_inboxes"]) == sorted(sources.items())


# -- unknown outcomes: reconcile, never post twice --------------------------------------------------


def test_message_timeout_after_storing_is_adopted_not_reposted(emulator, sent):
    _, conversation = seed()
    drain(conversation.pk)
    message = services.send_message(conversation, "hello")
    emulator.delay_next(1, seconds=1.5, method="POST", path="/messages", after_effect=True)
    first = outbox.drain_conversation(conversation.pk)
    message.refresh_from_db()
    assert first.retry_in is not None and "no answer within" in message.local_error
    assert message.local_state == LocalState.QUEUED and message.remote_id is None

    drain(conversation.pk)
    message.refresh_from_db()
    [remote] = remote_by_source(emulator, message.source_id)
    assert (message.remote_id, message.local_state, message.local_attempts) == (remote["id"], LocalState.SENT, 2)
    assert [c["message"].pk for c in sent.calls] == [message.pk]


@pytest.mark.parametrize("fault", ["500", "reset"])
def test_message_lost_answer_without_effect_is_posted_again(emulator, fault):
    _, conversation = seed()
    message = services.send_message(conversation, "hello")
    if fault == "500":
        emulator.fail_next(1, status=500, method="POST", path="/messages")
    else:
        emulator.drop_next(1, method="POST", path="/messages")
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT
    assert len(remote_by_source(emulator, message.source_id)) == 1
    assert len(posts(emulator, "/messages")) == 2


def test_conversation_500_after_creating_is_adopted_by_its_key(emulator):
    _, conversation = seed()
    services.send_message(conversation, "hello")
    emulator.fail_next(1, status=500, method="POST", path="/conversations", after_effect=True)
    drain(conversation.pk)
    conversation.refresh_from_db()
    [remote] = emulator.conversations()
    assert conversation.remote_id == remote["id"] and conversation.local_state == LocalState.SENT
    assert len(posts(emulator, "/conversations")) == 1
    assert len(emulator.messages(remote["id"])) == 1


def test_contact_reset_after_creating_is_adopted_by_its_source_id(emulator):
    contact, conversation = seed()
    emulator.drop_next(1, method="POST", path="/contacts", after_effect=True)
    drain(conversation.pk)
    contact.refresh_from_db()
    [remote] = emulator.contacts()
    assert contact.remote_id == remote["id"] and contact.local_state == LocalState.SENT
    assert len(posts(emulator, "/contacts")) == 1


def test_contact_without_identifier_is_reconciled_by_name_and_source_id(emulator):
    contact = services.ensure_contact(name="Bob Anonymous")
    conversation = services.start_conversation(contact)
    emulator.fail_next(1, status=502, method="POST", path="/contacts", after_effect=True)
    drain(conversation.pk)
    contact.refresh_from_db()
    assert [c["id"] for c in emulator.contacts()] == [contact.remote_id]


def test_webhook_that_stored_the_echo_first_is_respected(emulator, sent):
    _, conversation = seed()
    drain(conversation.pk)
    message = services.send_message(conversation, "hello")
    emulator.delay_next(1, seconds=1.5, method="POST", path="/messages", after_effect=True)
    outbox.drain_conversation(conversation.pk)
    [remote] = remote_by_source(emulator, message.source_id)
    # Meanwhile the receiver matched the echo by source_id and stored a newer status.
    Message.objects.filter(pk=message.pk).update(remote_id=remote["id"], status="delivered")
    drain(conversation.pk)
    message.refresh_from_db()
    assert (message.remote_id, message.status, message.local_state) == (remote["id"], "delivered", LocalState.SENT)
    assert Message.objects.count() == 1 and len(sent.calls) == 1


def test_a_webhook_mirror_of_our_conversation_is_folded_into_our_row(emulator):
    contact, conversation = seed()
    message = services.send_message(conversation, "hello")
    emulator.delay_next(1, seconds=1.5, method="POST", path="/conversations", after_effect=True)
    outbox.drain_conversation(conversation.pk)
    [remote] = emulator.conversations()
    # A webhook created a mirror row for it (without matching ours) before our retry.
    mirror = ConversationFactory(
        inbox=conversation.inbox, contact_inbox=conversation.contact_inbox, remote_id=remote["id"]
    )
    drain(conversation.pk)
    conversation.refresh_from_db()
    assert conversation.remote_id == remote["id"] and not Conversation.objects.filter(pk=mirror.pk).exists()
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT and len(emulator.conversations()) == 1


# -- retries, final errors, ordering --------------------------------------------------------------------


def test_final_4xx_fails_the_message_with_the_platform_error_and_the_next_one_still_goes(emulator, failed, sent):
    _, conversation = seed()
    first = services.send_message(conversation, "one")
    second = services.send_message(conversation, "two")
    emulator.fail_next(1, status=422, body={"error": "Validation failed: Content is too long"}, path="/messages")
    assert drain(conversation.pk).retry_in is None
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.local_state == LocalState.FAILED
    assert first.local_error == "HTTP 422: Validation failed: Content is too long"
    assert first.local_attempts == 1
    assert second.local_state == LocalState.SENT
    [call] = failed.calls
    assert (call["sender"], call["message"].pk, call["error"].status) == (Message, first.pk, 422)
    assert [c["message"].pk for c in sent.calls] == [second.pk]


def test_429_pauses_the_conversation_so_later_tasks_cannot_overtake(emulator, settings):
    settings.UNILINK = {**settings.UNILINK, "RETRY_BACKOFF": 1000, "RETRY_BACKOFF_MAX": 1000}
    _, conversation = seed()
    drain(conversation.pk)
    first = services.send_message(conversation, "one")
    emulator.fail_next(1, status=429, method="POST", path="/messages")
    result = outbox.drain_conversation(conversation.pk)
    assert result.retry_in is not None and isinstance(result.error, Exception)
    first.refresh_from_db()
    assert first.local_state == LocalState.QUEUED and "rate limited" in first.local_error
    services.send_message(conversation, "two")
    requests_before = len(emulator.requests_log)
    blocked = outbox.drain_conversation(conversation.pk)  # another task, during the pause
    assert blocked.paused_until is not None and not blocked.busy
    assert len(emulator.requests_log) == requests_before
    drain(conversation.pk)
    conversation.refresh_from_db()
    assert [m["content"] for m in emulator.messages(conversation.remote_id)] == ["one", "two"]


def test_retry_after_hint_is_a_lower_bound_of_the_backoff(emulator, settings):
    settings.UNILINK = {**settings.UNILINK, "RETRY_BACKOFF": 0.01, "RETRY_BACKOFF_MAX": 0.02}
    exc = RateLimitedError("429", retry_after=7.5)
    assert outbox.backoff_delay(1, exc.retry_after) >= 7.5
    assert 0 <= outbox.backoff_delay(30) <= 0.02


def test_the_flood_guard_422_is_retried_after_a_minute_not_failed(emulator, failed):
    _, conversation = seed()
    drain(conversation.pk)
    message = services.send_message(conversation, "one too many")
    emulator.fail_next(1, status=422, body={"error": "Validation failed: Too many messages"}, path="/messages")
    result = outbox.drain_conversation(conversation.pk)
    message.refresh_from_db()
    assert result.retry_in is not None and result.retry_in >= 60
    assert message.local_state == LocalState.QUEUED and "Too many messages" in message.local_error
    assert failed.calls == []


def test_backoff_grows_exponentially_up_to_the_cap(settings):
    settings.UNILINK = {**settings.UNILINK, "RETRY_BACKOFF": 2, "RETRY_BACKOFF_MAX": 600}
    ceilings = [max(outbox.backoff_delay(n) for _ in range(200)) for n in (1, 4, 12)]
    assert ceilings[0] <= 2 and 2 < ceilings[1] <= 16 and 300 < ceilings[2] <= 600


def test_retries_are_exhausted_after_max_retries(emulator, settings, failed):
    settings.UNILINK = {**settings.UNILINK, "MAX_RETRIES": 2}
    _, conversation = seed()
    drain(conversation.pk)
    message = services.send_message(conversation, "doomed")
    emulator.fail_next(3, status=503, method="POST", path="/messages")
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.local_state == LocalState.FAILED and message.local_attempts == 3
    assert message.local_error.startswith("Gave up after 3 attempts. Last error:") and "HTTP 503" in message.local_error
    assert [c["message"].pk for c in failed.calls] == [message.pk]


def test_messages_arrive_in_creation_order_despite_failures(emulator):
    _, conversation = seed()
    texts = [f"message {i}" for i in range(6)]
    for text in texts:
        services.send_message(conversation, text)
    emulator.fail_next(1, status=500, method="POST", path="/messages")
    emulator.drop_next(1, method="POST", path="/messages", after_effect=True)
    emulator.fail_next(1, status=429, method="POST", path="/messages")
    drain(conversation.pk)
    conversation.refresh_from_db()
    assert [m["content"] for m in emulator.messages(conversation.remote_id)] == texts
    assert set(Message.objects.values_list("local_state", flat=True)) == {LocalState.SENT}


def test_no_message_is_sent_before_its_conversation_exists(emulator):
    _, conversation = seed()
    message = services.send_message(conversation, "hello")
    emulator.fail_next(1, status=500, method="POST", path="/conversations")
    result = outbox.drain_conversation(conversation.pk)
    assert result.retry_in is not None
    assert posts(emulator, "/messages") == []
    message.refresh_from_db()
    assert message.local_state == LocalState.QUEUED and message.local_attempts == 0


def test_a_conversation_refused_for_good_fails_its_messages(emulator, failed):
    _, conversation = seed()
    message = services.send_message(conversation, "hello")
    emulator.fail_next(1, status=404, method="POST", path="/conversations")
    drain(conversation.pk)
    conversation.refresh_from_db()
    message.refresh_from_db()
    assert conversation.local_state == LocalState.FAILED and "HTTP 404" in conversation.local_error
    assert message.local_state == LocalState.FAILED
    assert message.local_error.startswith("The conversation could not be created on UniLink:")
    assert [c["message"].pk for c in failed.calls] == [message.pk]


def test_a_new_message_gives_a_failed_conversation_another_chance(emulator, failed):
    contact, conversation = seed()
    first = services.send_message(conversation, "first")
    emulator.fail_next(1, status=404, method="POST", path="/contacts")
    drain(conversation.pk)
    conversation.refresh_from_db()
    assert conversation.local_state == LocalState.FAILED
    second = services.send_message(conversation, "second")
    drain(conversation.pk)
    conversation.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert conversation.local_state == LocalState.SENT
    assert (first.local_state, second.local_state) == (LocalState.FAILED, LocalState.SENT)
    assert [m["content"] for m in emulator.messages(conversation.remote_id)] == ["second"]
    assert [c["message"].pk for c in failed.calls] == [first.pk]


def test_a_busy_conversation_is_left_to_its_worker(emulator):
    _, conversation = seed()
    services.send_message(conversation, "hello")
    Conversation.objects.filter(pk=conversation.pk).update(
        local_lease_owner="other-worker", local_lease_until=timezone.now() + dt.timedelta(minutes=5)
    )
    assert outbox.drain_conversation(conversation.pk).busy
    assert emulator.requests_log == []


def test_an_expired_lease_of_a_dead_worker_is_taken_over_and_its_message_reconciled(emulator):
    _, conversation = seed()
    drain(conversation.pk)
    message = services.send_message(conversation, "hello")
    conversation.refresh_from_db()
    # A worker posted the message, then died before storing the answer.
    client_for(emulator).create_message(
        conversation.remote_id, content="hello", message_type="incoming", source_id=message.source_id
    )
    Message.objects.filter(pk=message.pk).update(local_state=LocalState.SENDING, local_attempts=1)
    Conversation.objects.filter(pk=conversation.pk).update(
        local_lease_owner="dead-worker", local_lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT and len(remote_by_source(emulator, message.source_id)) == 1


def test_a_failed_lookup_keeps_the_unknown_outcome_of_the_messages_behind_it(emulator):
    _, conversation = seed()
    drain(conversation.pk)
    first = services.send_message(conversation, "one")
    second = services.send_message(conversation, "two")
    conversation.refresh_from_db()
    # A worker posted both messages, then died before storing the answers.
    for message in (first, second):
        client_for(emulator).create_message(
            conversation.remote_id, content=message.content, message_type="incoming", source_id=message.source_id
        )
    Message.objects.filter(pk__in=[first.pk, second.pk]).update(local_state=LocalState.SENDING, local_attempts=1)
    # The lookup of the first one fails (retryable): the second must still be looked up, not posted again.
    emulator.fail_next(1, status=503, method="GET", path="/messages")
    assert outbox.drain_conversation(conversation.pk).retry_in is not None
    second.refresh_from_db()
    assert (second.local_state, second.local_attempts) == (LocalState.SENDING, 1)
    drain(conversation.pk)
    for message in (first, second):
        message.refresh_from_db()
        assert message.local_state == LocalState.SENT and len(remote_by_source(emulator, message.source_id)) == 1


def test_a_lookup_refused_for_good_does_not_leave_the_next_lookup_blind(emulator):
    _, conversation = seed()
    drain(conversation.pk)
    first = services.send_message(conversation, "one")
    second = services.send_message(conversation, "two")
    conversation.refresh_from_db()
    client_for(emulator).create_message(
        conversation.remote_id, content="two", message_type="incoming", source_id=second.source_id
    )
    Message.objects.filter(pk__in=[first.pk, second.pk]).update(local_state=LocalState.SENDING, local_attempts=1)
    emulator.fail_next(1, status=422, body={"error": "refused"}, method="GET", path="/messages")
    drain(conversation.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.local_state == LocalState.FAILED and "refused" in first.local_error
    assert second.local_state == LocalState.SENT and len(remote_by_source(emulator, second.source_id)) == 1


def test_configuration_error_is_recorded_and_retried(emulator, settings):
    _, conversation = seed()
    drain(conversation.pk)
    message = services.send_message(conversation, "hello")
    settings.UNILINK = {**settings.UNILINK, "API_ACCESS_TOKEN": ""}
    result = outbox.drain_conversation(conversation.pk)
    message.refresh_from_db()
    assert result.retry_in is not None
    assert message.local_state == LocalState.QUEUED and "API_ACCESS_TOKEN" in message.local_error
    assert TOKEN not in message.local_error


def test_errors_never_contain_the_token(emulator):
    _, conversation = seed()
    message = services.send_message(conversation, "hello")
    emulator.fail_next(1, status=401, body={"error": "Invalid Access Token"}, path="/contacts")
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.local_state == LocalState.FAILED and "Invalid Access Token" in message.local_error
    for row in (*Message.objects.all(), *Conversation.objects.all(), *Contact.objects.all()):
        assert TOKEN not in row.local_error


# -- status changes and delivery reports ------------------------------------------------------------


def test_set_status_is_sent_after_the_messages_queued_before_it(emulator):
    _, conversation = seed()
    services.send_message(conversation, "thanks, solved")
    services.set_status(conversation, "resolved")
    drain(conversation.pk)
    conversation.refresh_from_db()
    [remote] = emulator.conversations()
    assert remote["status"] == "resolved" and conversation.status == "resolved"
    assert conversation.local_pending_status == ""
    assert [r.path.rsplit("/", 1)[-1] for r in emulator.requests_log if r.method == "POST"] == [
        "contacts",
        "conversations",
        "messages",
        "toggle_status",
    ]


def test_report_status_patches_the_agents_message(emulator):
    _, conversation = seed()
    drain(conversation.pk)
    conversation.refresh_from_db()
    reply = emulator.agent_reply(conversation.remote_id, "We are on it")
    mirrored = Message.objects.create(
        conversation=conversation, remote_id=reply["id"], content=reply["content"], message_type="outgoing"
    )
    services.report_status(mirrored, "failed", error="Push service unavailable")
    drain(conversation.pk)
    mirrored.refresh_from_db()
    [remote] = [m for m in emulator.messages(conversation.remote_id) if m["id"] == reply["id"]]
    assert remote["status"] == "failed"
    assert remote["content_attributes"]["external_error"] == "Push service unavailable"
    assert (mirrored.status, mirrored.local_report_status) == ("failed", "")


def test_report_on_our_own_message_waits_until_it_is_sent(emulator):
    _, conversation = seed()
    message = services.send_message(conversation, "hello")
    services.report_status(message, "read")
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.status == "read" and message.local_report_status == ""


def test_status_change_refused_for_good_is_recorded_and_dropped(emulator):
    _, conversation = seed()
    drain(conversation.pk)
    services.set_status(conversation, "snoozed")
    emulator.fail_next(1, status=404, path="/toggle_status")
    drain(conversation.pk)
    conversation.refresh_from_db()
    assert conversation.local_pending_status == "" and "Status change failed:" in conversation.local_error
    assert "returned HTTP 404" in conversation.local_error


# -- eager mode (no broker), the sweep, retrying by hand --------------------------------------------------


def test_eager_task_runs_the_whole_flow(emulator):
    _, conversation = seed()
    message = services.send_message(conversation, "hello")
    outbox.deliver_conversation.apply(args=(conversation.pk,))
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT


def test_eager_task_leaves_a_retryable_failure_queued_without_pausing(emulator):
    _, conversation = seed()
    message = services.send_message(conversation, "hello")
    emulator.fail_next(1, status=503, path="/contacts")
    outbox.deliver_conversation.apply(args=(conversation.pk,))
    conversation.refresh_from_db()
    assert conversation.local_lease_until is None and conversation.local_lease_owner == ""
    message.refresh_from_db()
    assert message.local_state == LocalState.QUEUED
    outbox.deliver_conversation.apply(args=(conversation.pk,))
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT and len(emulator.contacts()) == 1


def test_sweep_requeues_only_stuck_work(emulator, settings, django_capture_on_commit_callbacks, monkeypatch):
    settings.UNILINK = {**settings.UNILINK, "STUCK_AFTER": 60}
    _, stuck = seed("stuck")
    _, fresh = seed("fresh")
    services.send_message(stuck, "old")
    services.send_message(fresh, "new")
    old = timezone.now() - dt.timedelta(minutes=5)
    Message.objects.filter(conversation=stuck).update(local_state_changed=old)
    Conversation.objects.filter(pk=stuck.pk).update(local_state_changed=old)
    published: list[tuple[str, int]] = []
    monkeypatch.setattr(outbox.tasks, "publish", lambda task, pk: published.append((task.name, pk)))
    assert outbox.sweep_stuck() == {"conversations": 1, "contacts": 0}
    assert published == [("django_unilink.deliver_conversation", stuck.pk)]


def test_retry_messages_requeues_failed_ones_and_lifts_the_pause(emulator, failed):
    _, conversation = seed()
    message = services.send_message(conversation, "hello")
    emulator.fail_next(1, status=422, body={"error": "Inbox is locked"}, path="/messages")
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.local_state == LocalState.FAILED
    Conversation.objects.filter(pk=conversation.pk).update(local_lease_until=timezone.now() + dt.timedelta(hours=1))
    assert outbox.retry_messages(Message.objects.all()) == 1
    message.refresh_from_db()
    assert (message.local_state, message.local_attempts) == (LocalState.QUEUED, 0)
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT and len(remote_by_source(emulator, message.source_id)) == 1
    assert outbox.retry_messages(Message.objects.all()) == 0  # sent messages are left alone


# -- queueing: one task per conversation, races with webhooks --------------------------------------


class Broker(list):  # type: ignore[type-arg]
    """Tasks handed to the broker, recorded instead of sent; ``refuse = True`` makes it fail."""

    refuse = False

    def publish(self, task: Any, pk: int) -> bool:
        self.append((task.name, pk))
        return not self.refuse


@pytest.fixture
def published(monkeypatch: Any) -> Broker:
    broker = Broker()
    monkeypatch.setattr(outbox.tasks, "publish", broker.publish)
    return broker


def test_one_task_is_queued_per_conversation_until_a_worker_takes_it(
    emulator, published, django_capture_on_commit_callbacks
):
    _, conversation = seed()
    drain(conversation.pk)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.send_message(conversation, "one")
    with django_capture_on_commit_callbacks(execute=True):
        services.send_message(conversation, "two")  # a task is queued already: it will send this too
    assert published == [("django_unilink.deliver_conversation", conversation.pk)]
    drain(conversation.pk)
    conversation.refresh_from_db()
    assert [m["content"] for m in emulator.messages(conversation.remote_id)] == ["one", "two"]
    assert conversation.local_lease_owner == "" and conversation.local_lease_until is None
    with django_capture_on_commit_callbacks(execute=True):
        services.send_message(conversation, "three")
    assert len(published) == 2


def test_a_broker_refusal_leaves_no_mark_behind(emulator, published, django_capture_on_commit_callbacks):
    _, conversation = seed()
    drain(conversation.pk)
    published.clear()
    published.refuse = True
    with django_capture_on_commit_callbacks(execute=True):
        message = services.send_message(conversation, "one")
    conversation.refresh_from_db()
    assert conversation.local_lease_owner == ""  # so the next send queues a task again
    message.refresh_from_db()
    assert message.local_state == LocalState.QUEUED
    published.refuse = False
    with django_capture_on_commit_callbacks(execute=True):
        services.send_message(conversation, "two")
    assert len(published) == 2


def test_an_echo_stored_while_the_batch_is_in_flight_keeps_its_newer_status(emulator, monkeypatch, sent):
    _, conversation = seed()
    drain(conversation.pk)
    message = services.send_message(conversation, "hello")
    original = UnilinkClient.create_message

    def post_then_echo(self: UnilinkClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = original(self, *args, **kwargs)
        # The webhook of this message is processed before the worker stores the answer.
        Message.objects.filter(source_id=kwargs["source_id"]).update(remote_id=answer["id"], status="delivered")
        return answer

    monkeypatch.setattr(UnilinkClient, "create_message", post_then_echo)
    drain(conversation.pk)
    message.refresh_from_db()
    assert (message.local_state, message.status) == (LocalState.SENT, "delivered")
    assert [c["message"].pk for c in sent.calls] == [message.pk]


def test_a_separate_mirror_row_of_our_echo_is_merged_away(emulator, monkeypatch):
    _, conversation = seed()
    drain(conversation.pk)
    message = services.send_message(conversation, "hello")
    original = UnilinkClient.create_message

    def post_then_mirror(self: UnilinkClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = original(self, *args, **kwargs)
        # A receiver that did not recognise the echo stored it as a message of its own.
        Message.objects.create(conversation_id=conversation.pk, remote_id=answer["id"], content="hello")
        return answer

    monkeypatch.setattr(UnilinkClient, "create_message", post_then_mirror)
    drain(conversation.pk)
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT
    assert list(Message.objects.filter(remote_id=message.remote_id).values_list("pk", flat=True)) == [message.pk]


def test_eager_mode_sends_from_the_services_call(emulator):
    from django_unilink.testing.pytest_plugin import run_tasks_synchronously

    with run_tasks_synchronously():
        contact = services.ensure_contact(identifier="eager-1", name="Eve")
        conversation = services.start_conversation(contact)
        message = services.send_message(conversation, "hello")
    message.refresh_from_db()
    assert message.local_state == LocalState.SENT and len(emulator.messages()) == 1
