"""The testing kit's fixtures and context managers (django_unilink.testing.pytest_plugin).

The examples of docs/testing.md are run by tests/test_kit_docs.py; this module pins the
behaviour they rely on: what the emulator fixture changes in settings and restores, where
webhooks go, and what running tasks synchronously does and undoes.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from celery import current_app, shared_task
from django.conf import settings
from django.db import transaction

from django_unilink import conf, services
from django_unilink.client import UnilinkClient
from django_unilink.models import LocalState
from django_unilink.outbox import drain_conversation
from django_unilink.testing.contexts import (
    EMULATOR_TOKEN,
    EMULATOR_WEBHOOK_SECRET,
    emulator_settings,
    run_tasks_synchronously,
)
from django_unilink.testing.emulator import Emulator
from django_unilink.testing.webhooks import record_signals

#: What each kit task call saw: (argument, whether it ran eagerly).
CALLS: list[tuple[int, bool]] = []


@shared_task(name="tests.test_kit.record_call", bind=True)
def record_call(self: Any, value: int) -> None:
    CALLS.append((value, bool(self.request.is_eager)))


@shared_task(name="tests.test_kit.queue_another")
def queue_another(value: int) -> None:
    # A task that queues another one on commit, as the outbox's tasks may.
    transaction.on_commit(lambda: record_call.delay(value + 1))


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False


# -- the emulator fixture -------------------------------------------------------------------------


def test_the_emulator_fixture_points_unilink_at_the_emulator(unilink_emulator: Emulator) -> None:
    config = conf.get_inbox_config()

    assert config.base_url == unilink_emulator.url
    assert config.api_access_token == EMULATOR_TOKEN == unilink_emulator.api_access_token
    assert config.webhook_secrets == (EMULATOR_WEBHOOK_SECRET,)
    # The ids and the other keys of the test settings are kept (factories keep matching).
    assert (config.account_id, config.inbox_id) == (1, 7)
    assert conf.get_setting("WEBHOOK_PROCESSING") == "inline"
    with UnilinkClient.from_config(config) as client:
        assert client.get_inbox(7)["id"] == 7
    [inbox] = unilink_emulator.inboxes()
    assert inbox["webhook_url"] in (None, "")  # no live server: nothing is posted anywhere


def test_emulator_settings_restores_settings_and_stops_the_emulator() -> None:
    before = dict(settings.UNILINK)

    with emulator_settings() as emulator:
        assert settings.UNILINK["BASE_URL"] == emulator.url
        assert _port_open(emulator.url)

    assert settings.UNILINK == before
    assert not _port_open(emulator.url)


def test_emulator_settings_leaves_a_given_emulator_running() -> None:
    with Emulator(account_id=1) as emulator:
        with emulator_settings(emulator):
            assert settings.UNILINK["BASE_URL"] == emulator.url
        assert _port_open(emulator.url)


@pytest.mark.django_db(transaction=True)
def test_with_live_server_the_emulators_webhooks_reach_the_sites_receivers(
    live_server: Any, unilink_emulator: Emulator, unilink_tasks: Any
) -> None:
    [inbox] = unilink_emulator.inboxes()
    assert inbox["webhook_url"] == f"{live_server.url}/unilink/webhook/default/"
    with unilink_tasks():
        contact = services.ensure_contact(identifier="kit-live-1", name="Kit")
        conversation = services.start_conversation(contact)
    unilink_emulator.wait_for_webhooks()
    conversation.refresh_from_db()
    assert conversation.remote_id is not None

    with record_signals("message_received") as calls:
        unilink_emulator.agent_reply(conversation.remote_id, "Answer from the agent")
        unilink_emulator.wait_for_webhooks()

    assert [call.kwargs["message"].content for call in calls] == ["Answer from the agent"]
    assert calls[0].kwargs["message"].conversation == conversation
    assert all(d["status"] == 200 for d in unilink_emulator.webhook_deliveries())


# -- running tasks synchronously ------------------------------------------------------------------


@pytest.mark.django_db
def test_tasks_queued_on_commit_run_when_the_block_ends() -> None:
    with run_tasks_synchronously():
        transaction.on_commit(lambda: record_call.delay(1))
        assert CALLS == []  # still inside the test's transaction

    assert CALLS == [(1, True)]


@pytest.mark.django_db
def test_callbacks_queued_by_tasks_run_too() -> None:
    with run_tasks_synchronously():
        transaction.on_commit(lambda: queue_another.delay(10))

    assert CALLS == [(11, True)]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_tasks_run_at_once() -> None:
    with run_tasks_synchronously():
        transaction.on_commit(lambda: record_call.delay(2))  # autocommit: runs now
        assert CALLS == [(2, True)]


@pytest.mark.django_db
def test_eager_mode_is_restored_afterwards() -> None:
    before = (current_app.conf.task_always_eager, current_app.conf.task_eager_propagates)

    with pytest.raises(RuntimeError), run_tasks_synchronously():
        assert current_app.conf.task_always_eager and current_app.conf.task_eager_propagates
        raise RuntimeError("the block fails")

    assert (current_app.conf.task_always_eager, current_app.conf.task_eager_propagates) == before


@pytest.mark.django_db
def test_a_retryable_failure_leaves_the_message_queued_until_drained_again(
    unilink_emulator: Emulator, unilink_tasks: Any
) -> None:
    with unilink_tasks():
        conversation = services.start_conversation(services.ensure_contact(identifier="kit-retry-1"))
    unilink_emulator.fail_next(status=500, method="POST", path="/messages")

    with unilink_tasks():
        message = services.send_message(conversation, "Try again later")

    message.refresh_from_db()
    assert message.local_state == LocalState.QUEUED  # not retried in eager mode (docs/testing.md)
    assert "500" in message.local_error and message.local_attempts == 1
    assert [m for m in unilink_emulator.messages() if m["content"] == "Try again later"] == []

    drain_conversation(conversation.pk, pause_on_retry=False)

    message.refresh_from_db()
    assert message.local_state == LocalState.SENT
    assert [m["id"] for m in unilink_emulator.messages() if m["content"] == "Try again later"] == [message.remote_id]
