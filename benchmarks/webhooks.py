"""Webhook intake throughput: django-unilink's view against a bare Django view, in one run.

    .venv/bin/python benchmarks/webhooks.py [--deliveries 2000] [--rounds 5]

Every delivery is a signed ``message_created`` (an agent's reply, a new message id each time) as
the platform sends it, pushed through Django's WSGI handler in this process (middleware, URL
resolution, view, database; no network, so the figures are the server's own cost). Three views:

- **bare**: a plain Django view that checks the HMAC and the timestamp, and inserts one row.
- **unilink ack**: django-unilink's view with ``WEBHOOK_PROCESSING="celery"``: verify, validate,
  log the delivery, publish the task (in-memory broker, no worker). This is what the platform
  waits for.
- **unilink ack + processing**: ``WEBHOOK_PROCESSING="inline"``: the same, plus mirroring the
  message and sending the signals before answering.

Rounds alternate the three views to share out machine noise. Printed: deliveries per second,
p50/p99 latency of each answer, database queries per delivery, and the ratios to the bare view.
SQLite (a file, WAL) by default; ``UNILINK_TEST_DB=postgres`` uses PostgreSQL (``PG*``
variables as the tests, database ``unilink_bench_webhooks``, recreated each run).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SECRET = "bench-webhook-secret"
URLCONF = "unilink_bench_urls"


def configure() -> str:
    """Configure Django for this process; return a description of the database."""
    import django
    from django.conf import settings

    if os.environ.get("UNILINK_TEST_DB", "sqlite") == "postgres":
        name = "unilink_bench_webhooks"
        _recreate_pg_database(name)
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": os.environ.get("PGUSER", "unilink"),
            "PASSWORD": os.environ.get("PGPASSWORD", "unilink"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "CONN_MAX_AGE": None,
        }
        described = f"PostgreSQL {name}"
    else:
        path = os.path.join(tempfile.gettempdir(), f"unilink-bench-webhooks-{os.getpid()}.sqlite3")
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "CONN_MAX_AGE": None}
        described = f"SQLite file {path} (WAL)"
    settings.configure(
        SECRET_KEY="bench-only",
        DEBUG=False,
        USE_TZ=True,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=URLCONF,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "django_unilink",
        ],
        MIDDLEWARE=["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"],
        DATABASES={"default": database},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        UNILINK={
            "BASE_URL": "http://127.0.0.1:9",
            "ACCOUNT_ID": 1,
            "API_ACCESS_TOKEN": "bench-token",
            "INBOX_ID": 7,
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_PROCESSING": "inline",
        },
        LOGGING_CONFIG=None,
    )
    django.setup()
    if database["ENGINE"].endswith("sqlite3"):
        from django.db.backends.signals import connection_created

        def pragmas(sender: Any, connection: Any, **kwargs: Any) -> None:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")

        connection_created.connect(pragmas)
    return described


def _recreate_pg_database(name: str) -> None:
    import psycopg

    conninfo = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "unilink"),
        "password": os.environ.get("PGPASSWORD", "unilink"),
        "dbname": "postgres",
    }
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def install_urls() -> None:
    """The URLconf: django-unilink's webhook URLs, and the bare view."""
    from django.urls import include, path
    from django.utils import timezone
    from django.views.decorators.csrf import csrf_exempt
    from django.views.decorators.http import require_POST

    from django_unilink.models import WebhookEvent

    @csrf_exempt
    @require_POST
    def bare(request: Any) -> Any:
        from django.http import JsonResponse

        body = request.body
        ts = request.headers.get("X-Chatwoot-Timestamp", "")
        expected = "sha256=" + hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Chatwoot-Signature", "")
        if not ts.isdigit() or not hmac.compare_digest(expected, given) or abs(time.time() - int(ts)) > 300:
            return JsonResponse({"error": "bad signature"}, status=401)
        WebhookEvent.objects.create(
            inbox_key="bare",
            delivery_id=request.headers.get("X-Chatwoot-Delivery"),
            body=body.decode(),
            valid=True,
            received_at=timezone.now(),
        )
        return JsonResponse({"status": "ok"})

    module = types.ModuleType(URLCONF)
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("bare/", bare),
        path("unilink/", include("django_unilink.urls")),
    ]
    sys.modules[URLCONF] = module


def deliveries(count: int, first_id: int) -> list[tuple[bytes, dict[str, str]]]:
    """Signed message_created bodies (compact JSON, as the platform sends), each a new message."""
    from django_unilink.testing.webhooks import load_example

    template = load_example("message_created_outgoing")
    now = int(time.time())
    result = []
    for offset in range(count):
        payload = dict(template)
        payload["id"] = first_id + offset
        payload["content"] = f"Reply number {first_id + offset}"
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        result.append(
            (
                body,
                {
                    "HTTP_X_CHATWOOT_TIMESTAMP": str(now),
                    "HTTP_X_CHATWOOT_SIGNATURE": signature,
                    "HTTP_X_CHATWOOT_DELIVERY": str(uuid.uuid4()),
                },
            )
        )
    return result


def environ(path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "rest-client/2.1.0 (linux x86_64) ruby/3.4.4p34",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        **headers,
    }


class Mode:
    def __init__(self, label: str, path: str, processing: str | None) -> None:
        self.label = label
        self.path = path
        self.processing = processing
        self.latencies: list[float] = []
        self.elapsed = 0.0
        self.count = 0
        self.queries: list[int] = []

    def settings(self) -> Any:
        from django.conf import settings
        from django.test import override_settings

        if self.processing is None:
            return override_settings()
        return override_settings(UNILINK={**settings.UNILINK, "WEBHOOK_PROCESSING": self.processing})


def post(handler: Any, mode: Mode, body: bytes, headers: dict[str, str]) -> float:
    statuses: list[str] = []

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    started = time.perf_counter()
    response = handler(environ(mode.path, body, headers), start_response)
    for _chunk in response:
        pass
    if hasattr(response, "close"):
        response.close()
    took = time.perf_counter() - started
    if not statuses[0].startswith("200"):
        raise SystemExit(f"{mode.label}: unexpected answer {statuses[0]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=2000, help="deliveries per view (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    args = parser.parse_args()

    described = configure()
    install_urls()

    import django
    from celery import Celery
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_unilink.models import Message, WebhookEvent

    call_command("migrate", verbosity=0)
    # "celery" mode publishes to an in-memory broker: the acknowledgement path, no worker.
    celery = Celery("unilink_bench", broker="memory://", set_as_current=True)
    celery.conf.task_ignore_result = True
    celery.set_current()

    handler = WSGIHandler()
    modes = [
        Mode("bare view: HMAC check + 1 insert", "/bare/", None),
        Mode("django-unilink, ack (stored + queued)", "/unilink/webhook/default/", "celery"),
        Mode("django-unilink, ack + inline processing", "/unilink/webhook/default/", "inline"),
    ]
    next_id = 100_000
    # Warm-up: imports, the inbox row, the conversation and contact of the example.
    for mode in modes:
        with mode.settings():
            for body, headers in deliveries(20, next_id):
                post(handler, mode, body, headers)
            next_id += 20

    per_round = max(1, args.deliveries // args.rounds)
    for _round in range(args.rounds):
        for mode in modes:
            batch = deliveries(per_round, next_id)
            next_id += per_round
            with mode.settings():
                started = time.perf_counter()
                for body, headers in batch:
                    mode.latencies.append(post(handler, mode, body, headers))
                mode.elapsed += time.perf_counter() - started
                mode.count += len(batch)

    # Queries per delivery, counted apart from the timed runs (counting has a cost).
    for mode in modes:
        with mode.settings():
            for body, headers in deliveries(50, next_id):
                with CaptureQueriesContext(connection) as queries:
                    post(handler, mode, body, headers)
                mode.queries.append(len(queries))
            next_id += 50

    expected_messages = sum(m.count for m in modes[2:]) + 20 + 50
    assert Message.objects.count() >= expected_messages, "inline processing did not mirror every message"
    assert WebhookEvent.objects.filter(state="received").count() >= modes[1].count

    print(
        f"django-unilink webhook intake, {described}; Django {django.get_version()}, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    print(f"{per_round * args.rounds} signed message_created deliveries per view, {args.rounds} alternating rounds\n")
    print(f"{'view':44} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'queries':>8}")
    rates = []
    for mode in modes:
        rate = mode.count / mode.elapsed
        rates.append(rate)
        cuts = statistics.quantiles(mode.latencies, n=100)
        print(
            f"{mode.label:44} {rate:13.0f} {cuts[49] * 1000:8.2f} {cuts[98] * 1000:8.2f} "
            f"{statistics.mean(mode.queries):8.1f}"
        )
    print()
    print(f"ratio ack / bare:              {rates[1] / rates[0]:.2f}  (aim: >= 0.6)")
    print(f"ratio ack + processing / bare: {rates[2] / rates[0]:.2f}")
    p99_ack = statistics.quantiles(modes[1].latencies, n=100)[98] * 1000
    print(f"p99 acknowledgement latency:   {p99_ack:.2f} ms  (the platform waits 5000 ms)")


if __name__ == "__main__":
    try:
        main()
    finally:
        from django.conf import settings

        if settings.configured and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            for suffix in ("", "-wal", "-shm"):
                Path(settings.DATABASES["default"]["NAME"] + suffix).unlink(missing_ok=True)
