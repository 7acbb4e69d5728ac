"""End to end in a real browser: `make demo`'s processes, driven with Playwright and Debian's Chromium.

The test starts ``scripts/demo.sh`` itself (emulator, Celery worker, runserver; free ports, a
temporary data folder), then:

1. a visitor writes on the chat page;
2. the message reaches the emulator: it shows in the agent console;
3. in the console, the agent replies, adds a private note and resolves the conversation;
4. the reply appears on the visitor's page without a reload, the private note does not
   (although the site did receive it), and the page says the conversation was resolved;
5. staff find the conversation in the admin;
6. SIGINT (Ctrl-C) stops the script and every process it started.

The demo runs as ``make demo`` runs it: SQLite and the filesystem broker. In the PostgreSQL run of
the suite (``UNILINK_TEST_DB=postgres``) it runs on a fresh PostgreSQL database and, when Redis
answers on loopback, with Redis as the broker: the switches of docs/example-project.md.

Chromium comes from Debian (``bash scripts/services.sh chromium``); Playwright never downloads a
browser. Without Chromium the test is skipped, except in CI (``CI=true``) where it fails.
Screenshots of the chat page and the console are left in /tmp for people to look at.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("UNILINK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = Path(os.environ.get("UNILINK_SCREENSHOT_DIR") or tempfile.gettempdir())
STARTUP_TIMEOUT = 120.0  # seconds for the demo to print its URLs (a cold worker start included)
UI_TIMEOUT = 30_000  # milliseconds Playwright waits for something to appear


def _missing(reason: str) -> None:
    """Skip on a developer's machine, fail in CI, where the browser test must really run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run; `bash scripts/services.sh chromium`)")
    pytest.skip(f"{reason}; run `bash scripts/services.sh chromium`")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@dataclass
class Demo:
    """The running demo: its process, URLs, admin password, data folder and output."""

    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    port: int
    emulator_port: int
    admin_password: str
    chat_url: str = ""
    console_url: str = ""
    admin_url: str = ""
    database_url: str = ""  # PostgreSQL runs only; empty: the SQLite file in data_dir

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Read the demo's own database (``?`` placeholders)."""
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url) as db:
                return db.execute(sql.replace("?", "%s"), params).fetchall()
        with sqlite3.connect(f"file:{self.data_dir / 'db.sqlite3'}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(sql, params).fetchall()


def _wait_for_urls(demo: Demo) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        output = demo.output()
        chat = re.search(r"Chat page \(a visitor\):\s+(\S+)", output)
        console = re.search(r"Agent console:\s+(\S+)", output)
        admin = re.search(r"Admin:\s+(\S+)", output)
        if chat and console and admin:
            demo.chat_url, demo.console_url, demo.admin_url = chat[1], console[1], admin[1]
            return
        if demo.process.poll() is not None:
            pytest.fail(f"scripts/demo.sh exited with {demo.process.returncode}:\n{output[-6000:]}")
        time.sleep(0.2)
    pytest.fail(f"scripts/demo.sh printed no URLs in {STARTUP_TIMEOUT:.0f} s:\n{demo.output()[-6000:]}")


def _stop(demo: Demo, sig: int = signal.SIGINT) -> int | None:
    """Send ``sig`` to the script (as Ctrl-C would) and wait for it; the return code, or None."""
    if demo.process.poll() is None:
        demo.process.send_signal(sig)
        try:
            demo.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            return None
    return demo.process.returncode


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a process we may not signal still exists
        return True


@contextlib.contextmanager
def _backends() -> Iterator[dict[str, str]]:
    """Extra demo environment: none on SQLite runs; PostgreSQL (and Redis) on PostgreSQL runs."""
    if os.environ.get("UNILINK_TEST_DB", "sqlite") != "postgres":
        yield {}
        return
    import psycopg

    host, port = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432")
    user, password = os.environ.get("PGUSER", "unilink"), os.environ.get("PGPASSWORD", "unilink")
    name = f"unilink_demo_{secrets.token_hex(4)}"
    admin_url = f"postgresql://{user}:{password}@{host}:{port}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    env = {"DEMO_DATABASE_URL": f"postgres://{user}:{password}@{host}:{port}/{name}"}
    redis_port = int(os.environ.get("REDIS_PORT", "6379"))
    if _port_open(redis_port):
        # A database number of its own, so the demo's worker takes no other test's tasks.
        env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{redis_port}/{os.environ.get('UNILINK_DEMO_REDIS_DB', '13')}"
    try:
        yield env
    finally:
        with psycopg.connect(admin_url, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``scripts/demo.sh`` running on free ports with its own data folder."""
    with _backends() as backends:
        yield from _run_demo(tmp_path_factory, backends)


def _run_demo(tmp_path_factory: pytest.TempPathFactory, backends: dict[str, str]) -> Iterator[Demo]:
    data_dir = tmp_path_factory.mktemp("demo")
    log_path = data_dir / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNILINK_", "CELERY_", "DEMO_", "DJANGO_"))}
    running = Demo(
        process=None,  # type: ignore[arg-type]
        log_path=log_path,
        data_dir=data_dir,
        port=_free_port(),
        emulator_port=_free_port(),
        admin_password=secrets.token_urlsafe(12),
        database_url=backends.get("DEMO_DATABASE_URL", ""),
    )
    env.update(backends)
    env.update(
        DEMO_PORT=str(running.port),
        DEMO_EMULATOR_PORT=str(running.emulator_port),
        DEMO_DATA_DIR=str(data_dir),
        DEMO_ADMIN_PASSWORD=running.admin_password,
    )
    with log_path.open("wb") as log:
        # A session of its own: the script's process group can be checked (and cleaned) afterwards.
        running.process = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "demo.sh")],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_urls(running)
        # The worker prints its banner on its own schedule: wait for it, and check its broker.
        broker = backends.get("CELERY_BROKER_URL", "filesystem://").split(":")[0]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not re.search(r"\] celery@\S+ ready\.", running.output()):
            assert time.monotonic() < deadline, f"the worker never got ready:\n{running.output()[-6000:]}"
            time.sleep(0.2)
        assert re.search(rf"transport:\s+{broker}://", running.output()), "the worker does not use the chosen broker"
        yield running
    finally:
        if _stop(running) is None or _group_alive(running.process.pid):
            with contextlib.suppress(ProcessLookupError):  # whatever is left of the demo
                os.killpg(running.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e .[browser])")
    profile = tempfile.mkdtemp(prefix="unilink-chromium-")
    with sync_playwright() as playwright:
        # A fresh profile directory each run: no state from earlier runs, no first-run dialogs.
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1100, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def test_visitor_and_agent_talk_through_the_demo(browser: object, demo: Demo) -> None:
    from playwright.sync_api import BrowserContext, expect

    assert isinstance(browser, BrowserContext)
    expect.set_options(timeout=UI_TIMEOUT)
    question = f"Hello, my order {secrets.token_hex(3)} has not arrived."
    reply = "Sorry about that! It ships today."
    note = f"PRIVATE-NOTE {secrets.token_hex(4)}: check the warehouse"

    # 1. A visitor writes.
    chat = browser.new_page()
    chat.goto(demo.chat_url)
    expect(chat.get_by_role("heading", name="Chat with our team")).to_be_visible()
    chat.get_by_label("Your message").fill(question)
    chat.get_by_role("button", name="Send").click()
    expect(chat.locator("li.line.visitor", has_text=question)).to_be_visible()

    sent_at = time.monotonic()

    # 2. It reaches UniLink (the emulator), through the worker: the agent console shows it.
    console = browser.new_page()
    console.goto(demo.console_url)
    conversation = console.locator("section.conversation", has=console.locator(".message.incoming", has_text=question))
    expect(conversation).to_be_visible()
    timings = {"visitor message to console": time.monotonic() - sent_at}

    # 3. The agent answers, adds a private note, and resolves the conversation.
    def submit_reply(text: str, *, private: bool) -> None:
        form = conversation.locator("form.reply")
        form.locator("textarea[name=content]").fill(text)
        if private:
            form.locator("input[name=private]").check()
        with console.expect_navigation():
            form.get_by_role("button", name="Send").click()
        kind = ".message.private" if private else ".message.outgoing"
        expect(conversation.locator(kind, has_text=text)).to_be_visible()

    submit_reply(reply, private=False)
    replied_at = time.monotonic()
    submit_reply(note, private=True)
    with console.expect_navigation():
        conversation.get_by_role("button", name="Resolve").click()
    expect(conversation).to_have_attribute("data-status", "resolved")

    # 4. The visitor's page updates by itself: the reply, the resolution, never the note.
    expect(chat.locator("li.line.agent", has_text=reply)).to_be_visible()
    timings["agent reply to visitor page"] = time.monotonic() - replied_at
    expect(chat.locator("li.line.notice", has_text="resolved")).to_be_visible()
    expect(chat.locator("#status")).to_have_text("Resolved")
    expect(chat.get_by_role("button", name="New conversation")).to_be_visible()
    # The note did reach the site (mirrored by django-unilink) ...
    deadline = time.monotonic() + UI_TIMEOUT / 1000
    while not demo.query("SELECT id FROM django_unilink_message WHERE private AND content = ?", note):
        assert time.monotonic() < deadline, "the private note never reached the site's database"
        time.sleep(0.2)
    # ... and after the page's next polls it is still not on the page.
    chat.wait_for_timeout(2 * 1500 + 500)
    expect(chat.locator("body")).not_to_contain_text(note)
    expect(chat.locator("li.line")).to_have_count(3)  # question, reply, resolution notice

    # For people reading the output (-s): how long each hop took, polling intervals included.
    print("demo timings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    chat.screenshot(path=str(SCREENSHOT_DIR / "unilink-demo-chat.png"), full_page=True)
    console.screenshot(path=str(SCREENSHOT_DIR / "unilink-demo-console.png"), full_page=True)

    # 5. Staff see the conversation in the admin.
    admin = browser.new_page()
    admin.goto(demo.admin_url)
    admin.get_by_label("Username").fill("admin")
    admin.get_by_label("Password").fill(demo.admin_password)
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_role("link", name="Chat lines")).to_be_visible()
    admin.goto(demo.admin_url + "support/chatline/")
    expect(admin.locator("#result_list")).to_contain_text(reply)
    expect(admin.locator("#result_list")).not_to_contain_text(note)


def test_ctrl_c_stops_every_process(demo: Demo) -> None:
    """Runs after the browser test (same module-scoped demo): SIGINT ends the script and its children."""
    assert _port_open(demo.port) and _port_open(demo.emulator_port)
    assert _stop(demo, signal.SIGINT) is not None, "the demo did not stop within 30 s of SIGINT"
    deadline = time.monotonic() + 15
    while _group_alive(demo.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(demo.process.pid), "processes of the demo survived Ctrl-C"
    assert not _port_open(demo.port) and not _port_open(demo.emulator_port)
    assert "demo: stopping" in demo.output()
