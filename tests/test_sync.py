"""The catch-up sync: ``manage.py unilink_sync`` and the ``sync_inbox`` task.

Against the emulator (a real loopback server speaking the platform's API) for the flows, and
against pytest-httpserver with hand-written platform responses (§1.3, §1.4 shapes) for paging
details and failures.
"""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs

import pytest
from django.core.management import CommandError, call_command

from django_unilink import receiving
from django_unilink.client import UnilinkClient
from django_unilink.conf import get_inbox_config
from django_unilink.models import Contact, Conversation, LocalState, Message
from django_unilink.sync import parse_since, sync
from django_unilink.testing import factories
from django_unilink.testing.webhooks import record_signals

pytestmark = pytest.mark.django_db


def run_sync(*args, capture=None):
    out, err = io.StringIO(), io.StringIO()
    with capture(execute=True) if capture else _null():
        call_command("unilink_sync", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- against the emulator ---------------------------------------------------------------------------


@pytest.fixture
def remote(unilink_emulator):
    """A conversation on the emulator that this site never heard of (its webhooks were lost)."""
    client = UnilinkClient.from_config(get_inbox_config("default"))
    created = client.create_contact(inbox_id=7, name="Jane Doe", identifier="jane-1", email="jane@example.com")
    source_id = created["contact_inbox"]["source_id"]
    conversation = client.create_conversation(
        source_id=source_id,
        inbox_id=7,
        contact_id=created["contact"]["id"],
        message={"content": "My order is late", "message_type": "incoming"},
    )
    unilink_emulator.agent_reply(conversation["id"], "Looking into it")
    unilink_emulator.agent_reply(conversation["id"], "Refund approved by finance", private=True)
    unilink_emulator.set_status(conversation["id"], "resolved")
    yield {
        "client": client,
        "conversation": conversation,
        "source_id": source_id,
        "contact_id": created["contact"]["id"],
        "emulator": unilink_emulator,
    }
    client.close()


def test_sync_mirrors_what_webhooks_missed(remote, django_capture_on_commit_callbacks):
    with record_signals() as calls:
        out, err = run_sync(capture=django_capture_on_commit_callbacks)
    conversation = Conversation.objects.get()
    assert (conversation.remote_id, conversation.status, conversation.contact_inbox.source_id) == (
        remote["conversation"]["id"],
        "resolved",
        remote["source_id"],
    )
    assert Contact.objects.get().identifier == "jane-1"
    remote_messages = remote["emulator"].messages(conversation.remote_id)
    assert sorted(Message.objects.values_list("remote_id", flat=True)) == sorted(m["id"] for m in remote_messages)
    non_activity = [m for m in remote_messages if m["message_type"] != 2]
    assert [c.name for c in calls] == ["conversation_created"] + ["message_received"] * len(non_activity)
    assert {c.kwargs["event"].name for c in calls} == {"sync"}
    assert all(c.kwargs["event"].is_sync and c.kwargs["event"].webhook_event is None for c in calls)
    private = [c.kwargs["message"] for c in calls if c.name == "message_received" and c.kwargs["message"].private]
    assert [m.content for m in private] == ["Refund approved by finance"]
    assert "[default] 1 conversation(s) read, 1 new;" in out and "0 failure(s)" in out
    assert err == ""


def test_second_sync_is_quiet_and_reads_only_newer_messages(remote, django_capture_on_commit_callbacks):
    run_sync(capture=django_capture_on_commit_callbacks)
    last = max(Message.objects.values_list("remote_id", flat=True))
    remote["emulator"].requests_log.clear()
    remote["emulator"].agent_reply(remote["conversation"]["id"], "Anything else?")
    with record_signals() as calls:
        out, _ = run_sync(capture=django_capture_on_commit_callbacks)
    assert [(c.name, c.kwargs["message"].content) for c in calls] == [("message_received", "Anything else?")]
    message_reads = [r for r in remote["emulator"].requests_log if r.path.endswith("/messages")]
    assert [parse_qs(r.query)["after"] for r in message_reads] == [[str(last)]]
    with record_signals() as calls:
        run_sync(capture=django_capture_on_commit_callbacks)
    assert calls == []


def test_sync_adopts_a_message_this_site_sent_whose_answer_was_lost(remote, django_capture_on_commit_callbacks):
    run_sync(capture=django_capture_on_commit_callbacks)
    conversation = Conversation.objects.get()
    ours = factories.MessageFactory(
        conversation=conversation,
        remote_id=None,
        source_id="site-msg-1",
        message_type="incoming",
        content="One more thing",
        local_state=LocalState.SENDING,
    )
    posted = remote["client"].create_message(
        conversation.remote_id, content="One more thing", message_type="incoming", source_id="site-msg-1"
    )
    with record_signals() as calls:
        out, _ = run_sync(capture=django_capture_on_commit_callbacks)
    assert calls == []
    ours.refresh_from_db()
    assert ours.remote_id == posted["id"]
    assert Message.objects.filter(source_id="site-msg-1").count() == 1
    assert "1 linked or updated" in out


def test_sync_one_conversation(remote, django_capture_on_commit_callbacks):
    other = remote["client"].create_conversation(
        source_id=remote["source_id"], inbox_id=7, contact_id=remote["contact_id"]
    )
    run_sync("--inbox", "default", "--conversation", str(other["id"]), capture=django_capture_on_commit_callbacks)
    assert list(Conversation.objects.values_list("remote_id", flat=True)) == [other["id"]]


def test_sync_task_syncs_every_inbox(remote, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        results = receiving.sync_inbox()
    assert len(results) == 1
    assert results[0]["inbox"] == "default" and results[0]["conversations_created"] == 1
    assert results[0]["failures"] == []
    assert Conversation.objects.count() == 1


# -- against hand-written platform responses ----------------------------------------------------------

NOW = time.time()


def contact_push(contact_id=42):
    return {
        "additional_attributes": {},
        "custom_attributes": {},
        "email": f"c{contact_id}@example.com",
        "id": contact_id,
        "identifier": f"user-{contact_id}",
        "name": f"Contact {contact_id}",
        "phone_number": None,
        "thumbnail": "",
        "blocked": False,
        "type": "contact",
    }


def api_message(message_id, conversation_id, *, source_id="src-55", created_at=None, message_type=1):
    return {
        "id": message_id,
        "content": f"message {message_id}",
        "inbox_id": 7,
        "conversation_id": conversation_id,
        "message_type": message_type,
        "content_type": "text",
        "status": "sent",
        "content_attributes": {},
        "created_at": int(created_at or NOW),
        "private": False,
        "source_id": None,
        "sender": {
            "id": 3,
            "name": "Priya Sharma",
            "available_name": "Priya",
            "avatar_url": "",
            "type": "user",
            "availability_status": "online",
            "thumbnail": "",
        },
    }


def api_conversation(conversation_id, *, contact_id=42, source_id="src-55", last_activity=None, with_message=True):
    last = int(last_activity or NOW)
    last_message = api_message(conversation_id * 100, conversation_id, created_at=last)
    last_message["conversation"] = {
        "assignee_id": None,
        "unread_count": 0,
        "last_activity_at": last,
        "contact_inbox": {"source_id": source_id},
    }
    return {
        "meta": {"sender": contact_push(contact_id), "channel": "Channel::Api", "hmac_verified": False},
        "id": conversation_id,
        "messages": [last_message] if with_message else [],
        "account_id": 1,
        "uuid": f"0b7d9c2e-6f0a-4c43-9a55-5a3c1c7a0{conversation_id:03d}",
        "additional_attributes": {},
        "agent_last_seen_at": 0,
        "assignee_last_seen_at": 0,
        "can_reply": True,
        "contact_last_seen_at": 0,
        "custom_attributes": {},
        "inbox_id": 7,
        "labels": [],
        "muted": False,
        "snoozed_until": None,
        "status": "open",
        "created_at": last - 60,
        "updated_at": last + 0.25,
        "timestamp": last,
        "first_reply_created_at": 0,
        "unread_count": 0,
        "last_non_activity_message": None,
        "last_activity_at": last,
        "priority": None,
        "waiting_since": 0,
        "sla_policy_id": None,
    }


@pytest.fixture
def platform(httpserver, settings):
    settings.UNILINK = {**settings.UNILINK, "BASE_URL": httpserver.url_for("/").rstrip("/")}
    return httpserver


def serve_listing(server, conversations):
    server.expect_request(
        "/api/v1/accounts/1/conversations", query_string={"status": "all", "inbox_id": "7", "page": "1"}
    ).respond_with_json({"data": {"meta": {"all_count": len(conversations)}, "payload": conversations}})
    server.expect_request(
        "/api/v1/accounts/1/conversations", query_string={"status": "all", "inbox_id": "7", "page": "2"}
    ).respond_with_json({"data": {"meta": {"all_count": len(conversations)}, "payload": []}})


def serve_messages(server, conversation_id, messages, after="0"):
    server.expect_request(
        f"/api/v1/accounts/1/conversations/{conversation_id}/messages", query_string={"after": after}
    ).respond_with_json(
        {"meta": {"labels": [], "additional_attributes": {}, "contact": contact_push()}, "payload": messages}
    )


def test_one_failing_conversation_does_not_stop_the_others(platform, django_capture_on_commit_callbacks):
    serve_listing(platform, [api_conversation(12), api_conversation(13, contact_id=43, source_id="src-56")])
    platform.expect_request("/api/v1/accounts/1/conversations/12/messages").respond_with_json(
        {"error": "boom"}, status=500
    )
    serve_messages(platform, 13, [api_message(1301, 13), api_message(1302, 13)])
    with pytest.raises(CommandError, match="1 failure"):
        run_sync(capture=django_capture_on_commit_callbacks)
    assert list(Conversation.objects.values_list("remote_id", flat=True)) == [13]
    assert sorted(Message.objects.values_list("remote_id", flat=True)) == [1301, 1302]


def test_a_failing_listing_page_keeps_what_was_read(platform):
    platform.expect_request(
        "/api/v1/accounts/1/conversations", query_string={"status": "all", "inbox_id": "7", "page": "1"}
    ).respond_with_json({"data": {"meta": {}, "payload": [api_conversation(12)]}})
    platform.expect_request(
        "/api/v1/accounts/1/conversations", query_string={"status": "all", "inbox_id": "7", "page": "2"}
    ).respond_with_data("Retry later\n", status=429, content_type="text/plain")
    serve_messages(platform, 12, [api_message(1201, 12)])
    result = sync("default")
    assert result.conversations == 1 and result.messages_created == 1
    assert result.failures == [result.failures[0]] and result.failures[0].startswith(
        "listing conversations: RateLimited"
    )
    assert Message.objects.count() == 1


def test_one_unreadable_requested_conversation_does_not_stop_the_others(platform, django_capture_on_commit_callbacks):
    platform.expect_request("/api/v1/accounts/1/conversations/99").respond_with_json(
        {"error": "Resource could not be found"}, status=404
    )
    platform.expect_request("/api/v1/accounts/1/conversations/12").respond_with_json(api_conversation(12))
    serve_messages(platform, 12, [])
    with pytest.raises(CommandError, match="1 failure"):
        run_sync(
            "--inbox",
            "default",
            "--conversation",
            "99",
            "--conversation",
            "12",
            capture=django_capture_on_commit_callbacks,
        )
    assert list(Conversation.objects.values_list("remote_id", flat=True)) == [12]


def test_failure_lines_and_counts_are_printed(platform, django_capture_on_commit_callbacks):
    serve_listing(platform, [api_conversation(12)])
    platform.expect_request("/api/v1/accounts/1/conversations/12/messages").respond_with_json(
        {"error": "boom"}, status=500
    )
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError):
        call_command("unilink_sync", stdout=out, stderr=err)
    assert "[default] 0 conversation(s) read" in out.getvalue()
    assert "[default]   failed: conversation 12: ServerError" in err.getvalue()
    assert "test-token-do-not-log" not in out.getvalue() + err.getvalue()


def test_contact_inbox_is_looked_up_when_the_listing_does_not_name_it(platform, django_capture_on_commit_callbacks):
    serve_listing(platform, [api_conversation(12, with_message=False)])
    platform.expect_request("/api/v1/accounts/1/contacts/42").respond_with_json(
        {
            "payload": {
                **contact_push(),
                "contact_inboxes": [
                    {"source_id": "other-inbox", "inbox": {"id": 9, "channel_type": "Channel::Api", "name": "Sales"}},
                    {"source_id": "src-55", "inbox": {"id": 7, "channel_type": "Channel::Api", "name": "UniLink API"}},
                ],
            }
        }
    )
    serve_messages(platform, 12, [])
    run_sync(capture=django_capture_on_commit_callbacks)
    assert Conversation.objects.get().contact_inbox.source_id == "src-55"


def test_since_stops_at_older_conversations_and_rereads_the_window(platform, django_capture_on_commit_callbacks):
    recent, old = NOW - 3600, NOW - 30 * 86400
    # Known locally: conversation 12 with a message from before the window and one inside it.
    inbox = factories.InboxFactory()
    conversation = factories.ConversationFactory(inbox=inbox, remote_id=12, updated_at=None)
    factories.MessageFactory(conversation=conversation, remote_id=1200, created_at=parse_since("3d"))
    factories.MessageFactory(conversation=conversation, remote_id=1250, created_at=parse_since("30m"))
    serve_listing(platform, [api_conversation(12, last_activity=recent), api_conversation(13, last_activity=old)])
    # after=1200: the last message before the window, so a gap inside the window is re-read.
    serve_messages(platform, 12, [api_message(1240, 12), api_message(1250, 12), api_message(1260, 12)], after="1200")
    with record_signals("message_received") as calls:
        run_sync("--since", "2d", capture=django_capture_on_commit_callbacks)
    assert sorted(c.kwargs["message"].remote_id for c in calls) == [1240, 1260]
    assert not Conversation.objects.filter(remote_id=13).exists()  # older than the window


def test_progress_is_shown_on_a_terminal(platform, django_capture_on_commit_callbacks):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    serve_listing(platform, [api_conversation(12), api_conversation(13, contact_id=43, source_id="src-56")])
    serve_messages(platform, 12, [])
    serve_messages(platform, 13, [])
    out = Terminal()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("unilink_sync", stdout=out)
    text = out.getvalue()
    assert "\r[default] 1 conversation(s) read" in text and "\r[default] 2 conversation(s) read" in text


def test_bad_arguments(settings):
    with pytest.raises(CommandError, match="Unknown inbox key"):
        call_command("unilink_sync", "--inbox", "nope")
    with pytest.raises(CommandError, match="is not a date"):
        call_command("unilink_sync", "--since", "yesterday-ish")
    settings.UNILINK = {**settings.UNILINK, "INBOXES": {"sales": {"INBOX_ID": 9}}}
    with pytest.raises(CommandError, match="exactly one --inbox"):
        call_command("unilink_sync", "--conversation", "12")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 7 * 86400), ("1w", 7 * 86400)],
)
def test_parse_since_ages(text, seconds):
    from django.utils import timezone

    assert abs((timezone.now() - parse_since(text)).total_seconds() - seconds) < 5


def test_parse_since_dates():
    assert parse_since("2026-06-18").isoformat() == "2026-06-18T00:00:00+00:00"
    assert parse_since("2026-06-18T09:15:00Z").isoformat() == "2026-06-18T09:15:00+00:00"
    assert parse_since(None) is None
