"""Sending through real Celery workers (subprocesses, Redis broker) against the emulator.

The workers run ``celery -A tests.celery_app worker`` on the test database (a file for SQLite,
so both processes see it), with short timeouts and backoffs. Redis is required: ``make test``
starts it (``bash scripts/services.sh redis``). Without it these tests are skipped, except in
CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from celery.signals import before_task_publish
from django.conf import settings as django_settings
from django.db import connection

from django_unilink import outbox, services
from django_unilink.models import Contact, Conversation, LocalState, Message
from django_unilink.testing.emulator import Emulator
from tests.celery_app import BROKER_URL, app
from tests.outbox_support import TOKEN, remote_by_source

pytestmark = [pytest.mark.celery_worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
#: Deadline for work that normally takes seconds; only reached when something is broken.
DEADLINE = float(os.environ.get("UNILINK_TEST_WORKER_DEADLINE", "240"))

#: The workers' UNILINK options (the test process uses the same ones).
WORKER_OPTIONS = {
    "CONNECT_TIMEOUT": 1.0,
    "READ_TIMEOUT": 0.5,
    "RETRY_BACKOFF": 0.1,
    "RETRY_BACKOFF_MAX": 1.0,
    "MAX_RETRIES": 60,
    "STUCK_AFTER": 2,
}


def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=1, socket_timeout=1).ping()
    except Exception as exc:  # any failure means: no broker for these tests
        return f"{type(exc).__name__}: {exc}"
    return None


REDIS_PROBLEM = _redis_problem()

# The worker subprocesses must see the test database: an in-memory SQLite database is private to
# this process, so the run uses a file instead (set before pytest-django creates it).
_database = django_settings.DATABASES["default"]
if REDIS_PROBLEM is None and _database["ENGINE"].endswith("sqlite3"):
    _test = _database.setdefault("TEST", {})
    if not _test.get("NAME") or "memory" in str(_test["NAME"]):
        _test["NAME"] = os.path.join(tempfile.gettempdir(), f"unilink-test-worker-{os.getpid()}.sqlite3")
    _options = _database.setdefault("OPTIONS", {})
    _options.setdefault("timeout", 30)
    # Two processes write: a transaction must take the write lock when it begins, or SQLite
    # refuses its first write at once when the other process wrote since it read.
    if django.VERSION >= (5, 1):
        _options.setdefault("transaction_mode", "IMMEDIATE")
    else:
        from tests import sqlite_immediate

        sqlite_immediate.enable()


def require_redis() -> None:
    if REDIS_PROBLEM is None:
        return
    reason = (
        f"Redis is not reachable at {BROKER_URL} ({REDIS_PROBLEM}); start it with `bash scripts/services.sh redis` "
        "(make test does)."
    )
    if IN_CI:
        pytest.fail(f"CI=true: the real-worker tests must run. {reason}")
    pytest.skip(reason)


class Worker:
    """One ``celery worker`` subprocess, logging to a file."""

    def __init__(
        self,
        name: str,
        queue: str,
        unilink: dict[str, Any],
        db_name: str,
        concurrency: int = 2,
        transport_options: dict[str, Any] | None = None,
    ) -> None:
        self.name = f"{name}-{uuid.uuid4().hex[:6]}@unilink-tests"
        self.log_path = Path(tempfile.gettempdir()) / f"unilink-{self.name.split('@')[0]}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "UNILINK_TEST_BROKER_URL": BROKER_URL,
            "UNILINK_WORKER_DB_NAME": db_name,
            "UNILINK_WORKER_SETTINGS": json.dumps({"UNILINK": unilink}),
            "UNILINK_TEST_BROKER_OPTIONS": json.dumps(transport_options or {}),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        command = [
            sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
            "-P", "threads", "-c", str(concurrency), "-Q", queue, "-n", self.name,
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
        ]  # fmt: skip
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited at start:\n{self.log_tail()}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise RuntimeError(f"worker {self.name} did not become ready:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, as an out-of-memory killer or a lost machine would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log_tail(self, lines: int = 60) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def wait_until(condition: Callable[[], bool], what: str, workers: list[Worker], poll: float = 0.2) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    logs = "\n\n".join(f"--- {w.name}\n{w.log_tail()}" for w in workers)
    raise AssertionError(f"not done within {DEADLINE:.0f} s: {what}\n{logs}")


def all_done() -> bool:
    """Nothing left to send, no status change or report pending."""
    return not (
        Message.objects.filter(local_state__in=outbox.PENDING).exists()
        or Conversation.objects.filter(local_state__in=outbox.PENDING).exists()
        or Contact.objects.filter(local_state__in=outbox.PENDING).exists()
        or Conversation.objects.exclude(local_pending_status="").exists()
        or Message.objects.exclude(local_report_status="").exists()
    )


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform() -> Iterator[Emulator]:
    with Emulator(account_id=1, api_access_token=TOKEN) as emu:
        emu.add_inbox(7)
        yield emu


@pytest.fixture(scope="module")
def database_name(django_db_setup: Any, django_db_blocker: Any) -> str:
    require_redis()
    with django_db_blocker.unblock():
        name = str(connection.settings_dict["NAME"])
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                # Readers never block the writer: the test polls while workers write.
                cursor.execute("PRAGMA journal_mode=WAL")
    return name


def worker_unilink(emu: Emulator, queue: str, **options: Any) -> dict[str, Any]:
    return {
        **django_settings.UNILINK,
        "BASE_URL": emu.url,
        "API_ACCESS_TOKEN": TOKEN,
        "CELERY_QUEUE": queue,
        **WORKER_OPTIONS,
        **options,
    }


@pytest.fixture(scope="module")
def workers(platform: Emulator, database_name: str) -> Iterator[tuple[list[Worker], dict[str, Any]]]:
    """Two worker processes with two threads each, consuming a queue of their own."""
    queue = f"unilink-tests-{uuid.uuid4().hex[:8]}"
    unilink = worker_unilink(platform, queue)
    started = [Worker(f"w{i}", queue, unilink, database_name) for i in (1, 2)]
    try:
        for worker in started:
            worker.wait_ready()
        yield started, unilink
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def live(settings: Any, platform: Emulator, workers: tuple[list[Worker], dict[str, Any]]) -> Iterator[Emulator]:
    """The emulator, fresh, with this process's settings matching the workers'."""
    running, unilink = workers
    platform.reset()
    settings.UNILINK = unilink
    yield platform
    platform.clear_faults()
    # The database is emptied after each test: let the workers finish first.
    wait_until(all_done, "workers idle before teardown", running)


@pytest.fixture
def published() -> Iterator[list[tuple[str, Any]]]:
    """``(task name, body)`` of every task this process publishes to the broker."""
    seen: list[tuple[str, Any]] = []

    def record(sender: str | None = None, body: Any = None, **kwargs: Any) -> None:
        seen.append((str(sender), body))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


# -- tests --------------------------------------------------------------------------------------


def test_seed_flow_through_a_real_worker(live, workers, published):
    running, _ = workers
    contact = services.ensure_contact(identifier="seed-1", name="Alice Martin", email="alice@example.com")
    conversation = services.start_conversation(contact, custom_attributes={"order": "A-1"})
    message = services.send_message(
        conversation, "My parcel has not arrived.", attachments=[("receipt.txt", b"order A-1", "text/plain")]
    )
    wait_until(all_done, "seed flow", running)

    contact.refresh_from_db()
    conversation.refresh_from_db()
    message.refresh_from_db()
    [remote_contact] = live.contacts()
    [remote_conversation] = live.conversations()
    [remote_message] = live.messages(remote_conversation["id"])
    assert (contact.local_state, contact.remote_id) == (LocalState.SENT, remote_contact["id"])
    source_id = conversation.contact_inbox.source_id
    assert [ci["source_id"] for ci in remote_contact["contact_inboxes"]] == [source_id]
    assert live.conversation_source_id(remote_conversation["id"]) == source_id
    assert (conversation.local_state, conversation.remote_id) == (LocalState.SENT, remote_conversation["id"])
    assert remote_conversation["custom_attributes"] == {"order": "A-1"}
    assert (message.local_state, message.remote_id, message.status) == (LocalState.SENT, remote_message["id"], "sent")
    assert remote_message["source_id"] == message.source_id and remote_message["content"] == message.content
    assert [a["extension"] for a in remote_message["attachments"]] == ["txt"]

    # Status changes and delivery reports go through the worker too.
    reply = live.agent_reply(conversation.remote_id, "Sorry about that, it ships today.")
    mirrored = Message.objects.create(
        conversation=conversation, remote_id=reply["id"], content=reply["content"], message_type="outgoing"
    )
    services.report_status(mirrored, "read")
    services.set_status(conversation, "resolved")
    wait_until(all_done, "status change and report", running)
    conversation.refresh_from_db()
    assert conversation.status == "resolved" and live.conversations()[0]["status"] == "resolved"
    assert [m["status"] for m in live.messages(conversation.remote_id) if m["id"] == reply["id"]] == ["read"]

    # Task arguments are primary keys only: no token, no content, no settings.
    assert published, "nothing was published to the broker"
    for name, body in published:
        args, kwargs = body[0], body[1]
        assert name.startswith("django_unilink.") and kwargs == {}
        assert len(args) == 1 and type(args[0]) is int, (name, args)


def test_200_messages_with_30_percent_faults_arrive_once_each_in_order(live, workers):
    running, _ = workers
    live.random_faults(0.3, seed=20260618, timeout_seconds=1.0, after_effect_ratio=0.5)
    people = [services.ensure_contact(identifier=f"fault-{i}", name=f"Person {i}") for i in range(10)]
    conversations = [services.start_conversation(person) for person in people for _ in range(2)]
    expected: dict[int, list[str]] = {c.pk: [] for c in conversations}
    for i in range(200):
        conversation = conversations[i % len(conversations)]
        message = services.send_message(conversation, f"message {i} of conversation {conversation.pk}")
        expected[conversation.pk].append(str(message.source_id))
    wait_until(all_done, "200 messages under faults", running)
    live.clear_faults()

    states = dict.fromkeys(LocalState.values, 0)
    for state in Message.objects.values_list("local_state", flat=True):
        states[state] += 1
    assert states[LocalState.SENT] == 200, (
        states,
        list(Message.objects.exclude(local_error="").values_list("local_error", flat=True)[:5]),
    )
    assert len(live.contacts()) == 10 and len(live.conversations()) == 20
    for conversation in Conversation.objects.all():
        remote = live.messages(conversation.remote_id)
        source_ids = [m["source_id"] for m in remote if m.get("source_id")]
        # Exactly once each, in creation order; the platform's ids follow the same order.
        assert source_ids == expected[conversation.pk]
        by_source = {m["source_id"]: m["id"] for m in remote if m.get("source_id")}
        for pk, source_id, remote_id in Message.objects.filter(conversation=conversation).values_list(
            "pk", "source_id", "remote_id"
        ):
            assert by_source[source_id] == remote_id, pk
    faults = {r.fault for r in live.requests_log if r.fault}
    assert {"500", "429", "timeout", "reset"} <= faults, faults
    assert sum(1 for r in live.requests_log if r.fault) >= 60  # ~30% of several hundred posts


#: A broker that hands a dead worker's unacknowledged task to another worker after 3 s (Redis:
#: ``visibility_timeout``; the default is an hour, after the sweep has long done the job).
FAST_REDELIVERY = {"visibility_timeout": 3, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}


def kill_mid_request(
    live: Emulator, settings: Any, database_name: str, transport_options: dict[str, Any] | None
) -> tuple[Message, Conversation, list[Worker]]:
    """Start a worker, let it post a message the platform stores but answers late, SIGKILL it
    while it waits, and start a replacement on the same queue. Returns what the test needs."""
    queue = f"unilink-crash-{uuid.uuid4().hex[:8]}"
    # A longer read timeout than the others, so that the kill lands while the request waits.
    unilink = worker_unilink(live, queue, READ_TIMEOUT=2.0, CONNECT_TIMEOUT=0.5)
    settings.UNILINK = unilink
    victim = Worker("victim", queue, unilink, database_name, concurrency=1, transport_options=transport_options)
    started = [victim]
    try:
        victim.wait_ready()
        contact = services.ensure_contact(identifier=f"crash-{uuid.uuid4().hex[:6]}", name="Carla")
        conversation = services.start_conversation(contact)
        wait_until(
            lambda: Conversation.objects.filter(pk=conversation.pk, local_state=LocalState.SENT).exists(),
            "conversation created",
            started,
        )
        live.delay_next(1, seconds=30, method="POST", path="/messages", after_effect=True)
        message = services.send_message(conversation, "Are you still there?")
        wait_until(lambda: bool(remote_by_source(live, message.source_id)), "message stored remotely", started, 0.01)
        victim.kill()
        message.refresh_from_db()
        assert message.local_state == LocalState.SENDING and message.remote_id is None
        survivor = Worker("survivor", queue, unilink, database_name, transport_options=transport_options)
        started.append(survivor)
        survivor.wait_ready()
    except BaseException:
        for worker in started:
            worker.stop()
        raise
    return message, conversation, started


def assert_recovered_once(live: Emulator, message: Message, conversation: Conversation) -> None:
    message.refresh_from_db()
    [remote] = remote_by_source(live, message.source_id)
    assert (message.local_state, message.remote_id) == (LocalState.SENT, remote["id"])
    conversation.refresh_from_db()
    assert len(live.messages(conversation.remote_id)) == 1


def test_a_killed_worker_s_task_is_redelivered_and_its_message_adopted_not_reposted(live, database_name, settings):
    """acks_late: the broker gives the killed worker's task to another worker, which waits for
    the dead lease to run out, finds the message on the platform by its source_id, and adopts it."""
    message, conversation, workers = kill_mid_request(live, settings, database_name, FAST_REDELIVERY)
    try:
        wait_until(
            lambda: Message.objects.filter(pk=message.pk, local_state=LocalState.SENT).exists(),
            "message recovered by redelivery alone (no sweep)",
            workers,
        )
        assert_recovered_once(live, message, conversation)
    finally:
        for worker in workers:
            worker.stop()


def test_a_killed_worker_s_message_is_recovered_by_the_sweep(live, database_name, settings):
    """The sweep (Celery beat) re-queues the row left "sending"; the message is adopted, not reposted."""
    message, conversation, workers = kill_mid_request(live, settings, database_name, None)
    last_sweep = [0.0]

    def recovered() -> bool:
        if time.monotonic() - last_sweep[0] >= 1:
            outbox.sweep_stuck()  # what Celery beat runs every minute
            last_sweep[0] = time.monotonic()
        return Message.objects.filter(pk=message.pk, local_state=LocalState.SENT).exists()

    try:
        wait_until(recovered, "message recovered by the sweep", workers)
        assert_recovered_once(live, message, conversation)
    finally:
        for worker in workers:
            worker.stop()
