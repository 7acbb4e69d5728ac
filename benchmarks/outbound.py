"""Outbound throughput: ``send_message`` -> Celery worker -> loopback server, against a bare loop.

    .venv/bin/python benchmarks/outbound.py [--messages 400] [--conversations 8] [--concurrency 4] [--senders 1]

Both sides post the same JSON bodies to the same server in the same run. The server is the
emulator (it answers like the platform) in a process of its own, so that it shares no
interpreter lock with either side.

- **django-unilink**: ``services.send_message`` in this process (an ``INSERT``, and a task
  queued when none is queued for that conversation yet), one real ``celery worker`` subprocess
  (thread pool) on a Redis broker doing the outbox's work (lease, batch claim, one ``POST`` per
  message, answers stored in bulk). Timed from the first ``send_message`` call until the
  database says every message is sent.
- **bare loop**: one ``requests.Session`` posting the bodies one after another, nothing stored.

Messages are spread round-robin over ``--conversations`` conversations, then a second run uses a
single conversation (strictly sequential: the outbox keeps each conversation in order).
``--senders`` threads call ``send_message`` at once, as the requests of a busy site would.
Needs Redis (``bash scripts/services.sh redis``). SQLite (a file, WAL) by default;
``UNILINK_TEST_DB=postgres`` uses PostgreSQL as the tests do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402
from django.conf import settings  # noqa: E402

TOKEN = "bench-token"
#: The bodies both sides post (the client sends exactly these keys for a text message).
FIELDS = ("content", "message_type", "private", "source_id")


def configure_database() -> None:
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        name = os.path.join(tempfile.gettempdir(), f"unilink-bench-{os.getpid()}.sqlite3")
        database.setdefault("TEST", {})["NAME"] = name
        options = database.setdefault("OPTIONS", {})
        options["timeout"] = 30
        if django.VERSION >= (5, 1):
            options["transaction_mode"] = "IMMEDIATE"
    settings.LOGGING = {"version": 1, "disable_existing_loggers": False}


def start_worker(queue: str, unilink: dict[str, Any], db_name: str, concurrency: int) -> subprocess.Popen[bytes]:
    from tests.celery_app import BROKER_URL, app

    name = f"bench-{uuid.uuid4().hex[:6]}@unilink-bench"
    env = {
        **os.environ,
        "UNILINK_TEST_BROKER_URL": BROKER_URL,
        "UNILINK_WORKER_DB_NAME": db_name,
        "UNILINK_WORKER_SETTINGS": json.dumps({"UNILINK": unilink}),
        "PYTHONPATH": str(REPO),
    }
    log = open(os.path.join(tempfile.gettempdir(), "unilink-bench-worker.log"), "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-P", "threads", "-c", str(concurrency),
         "-Q", queue, "-n", name, "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", os.environ.get("BENCH_LOG", "WARNING")],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[name], timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start; see {log.name}")
    return process


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    """The emulator in a process of its own, so that it shares no interpreter lock with either side."""
    import socket

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "django_unilink.testing.emulator", "--port", str(port), "--token", TOKEN,
         "--inbox-id", "7", "--flood-limit", "0"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/api/v1/profile", headers={"api_access_token": TOKEN}, timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("the emulator did not start")


def wait_sent(pks: list[int], timeout: float = 600) -> None:
    from django_unilink.models import LocalState, Message

    deadline = time.monotonic() + timeout
    while Message.objects.filter(pk__in=pks).exclude(local_state=LocalState.SENT).exists():
        if Message.objects.filter(pk__in=pks, local_state=LocalState.FAILED).exists():
            raise SystemExit("a message failed; see the worker log")
        if time.monotonic() > deadline:
            raise SystemExit("messages not sent in time; see the worker log")
        time.sleep(0.02)


def run_outbox(conversations: list[Any], count: int, senders: int) -> tuple[float, list[dict[str, Any]]]:
    """Seconds to send ``count`` messages through the outbox; returns the bodies posted.

    ``senders`` threads call ``send_message`` at once, as the requests of a web site would.
    """
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from django_unilink import services
    from django_unilink.models import Message

    def send(indexes: range) -> list[int]:
        try:
            return [
                services.send_message(conversations[i % len(conversations)], f"Benchmark message {i}").pk
                for i in indexes
            ]
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        shares = pool.map(send, [range(n, count, senders) for n in range(senders)])
        pks = [pk for share in shares for pk in share]
    queued = time.perf_counter() - started
    print(
        f"  ({senders} sender thread(s); send_message: {queued / count * 1000 * senders:.2f} ms per call)", flush=True
    )
    wait_sent(pks)
    elapsed = time.perf_counter() - started
    bodies = [
        {"content": m.content, "message_type": m.message_type, "private": m.private, "source_id": str(uuid.uuid4())}
        for m in Message.objects.filter(pk__in=pks).order_by("pk")
    ]
    return elapsed, bodies


def run_plain(base_url: str, conversation_ids: list[int], bodies: list[dict[str, Any]]) -> float:
    import requests

    with requests.Session() as session:
        session.headers.update({"api_access_token": TOKEN, "Accept": "application/json"})
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            remote_id = conversation_ids[i % len(conversation_ids)]
            url = f"{base_url}/api/v1/accounts/1/conversations/{remote_id}/messages"
            response = session.post(url, json=body, timeout=(5, 30))
            response.raise_for_status()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4, help="worker threads")
    parser.add_argument("--senders", type=int, default=1, help="threads calling send_message (a busy site has many)")
    args = parser.parse_args()

    configure_database()
    django.setup()
    from django.db import connection

    from django_unilink import services
    from django_unilink.models import Conversation

    old_name = connection.settings_dict["NAME"]
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
    server, base_url = start_server()
    queue = f"unilink-bench-{uuid.uuid4().hex[:8]}"
    unilink = {**settings.UNILINK, "BASE_URL": base_url, "API_ACCESS_TOKEN": TOKEN, "CELERY_QUEUE": queue}
    settings.UNILINK = unilink
    worker = start_worker(queue, unilink, db_name, args.concurrency)
    try:
        print(
            f"database: {connection.vendor}; worker: 1 process, {args.concurrency} threads; "
            "server: the emulator, in its own process, on loopback"
        )
        for conversations_count in (args.conversations, 1):
            # Contacts and conversations first (not timed): the measure is about messages.
            contacts = [
                services.ensure_contact(identifier=f"bench-{uuid.uuid4().hex}") for _ in range(conversations_count)
            ]
            conversations = [services.start_conversation(c) for c in contacts]
            warmup = [services.send_message(c, "warm-up").pk for c in conversations]
            wait_sent(warmup)
            remote_ids = [Conversation.objects.get(pk=c.pk).remote_id for c in conversations]

            ours, bodies = run_outbox(conversations, args.messages, args.senders)
            plain = run_plain(base_url, remote_ids, bodies)
            ours_rate, plain_rate = args.messages / ours, args.messages / plain
            print(
                f"{args.messages} messages over {conversations_count} conversation(s): "
                f"django-unilink {ours_rate:7.1f} msg/s | plain requests.Session {plain_rate:7.1f} msg/s | "
                f"ratio {ours_rate / plain_rate:.2f}"
            )
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)
        server.terminate()
        server.wait(10)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
