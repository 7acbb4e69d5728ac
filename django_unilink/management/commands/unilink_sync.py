"""``manage.py unilink_sync``: catch up with what webhooks missed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import conf
from ...exceptions import ConfigurationError
from ...sync import SyncResult, parse_since, sync


class Command(BaseCommand):
    help = (
        "Read conversations (every status) and their messages from the UniLink API and mirror what "
        "is missing here: the platform never retries a failed webhook. Known objects are refreshed "
        "without signals; new conversations and messages send conversation_created / "
        "message_received with event.name 'sync'. Messages are read after the last known message "
        "id. One failing conversation does not stop the others; exits with status 1 if any failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--inbox", action="append", dest="inboxes", metavar="KEY", help="Only this inbox key; repeat for several."
        )
        parser.add_argument(
            "--since",
            metavar="WHEN",
            help=(
                "Only conversations active since WHEN (a date, a date and time, or an age like 2h or 7d), "
                "and re-read all their messages from then on."
            ),
        )
        parser.add_argument(
            "--conversation",
            action="append",
            dest="conversations",
            type=int,
            metavar="ID",
            help="Only this conversation (the display id in UniLink URLs); repeat for several. Needs one --inbox.",
        )
        parser.add_argument(
            "--full", action="store_true", help="Re-read every message, not only those after the last known one."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            configs = conf.inbox_configs()
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        keys = options["inboxes"] or list(configs)
        unknown = [key for key in keys if key not in configs]
        if unknown:
            known = ", ".join(map(repr, configs)) or "none"
            raise CommandError(f"Unknown inbox key(s): {', '.join(map(repr, unknown))}. Configured: {known}.")
        if options["conversations"] and len(keys) != 1:
            raise CommandError("--conversation needs exactly one --inbox (conversation ids are per account).")
        try:
            since = parse_since(options["since"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        tty = self.stdout.isatty()
        failed = 0
        for key in keys:
            try:
                result = sync(
                    key,
                    since=since,
                    conversation_ids=options["conversations"],
                    full=options["full"],
                    progress=self.show_progress if tty else None,
                )
            except ConfigurationError as exc:
                self.stderr.write(f"[{key}] cannot sync: {exc}")
                failed += 1
                continue
            if tty:
                self.stdout.write("\r", ending="")
            self.stdout.write(self.summary(result))
            for line in result.failures:
                self.stderr.write(f"[{key}]   failed: {line}")
            failed += len(result.failures)
        if failed:
            raise CommandError(f"{failed} failure(s); see above. What succeeded is mirrored; run the sync again.")

    def show_progress(self, result: SyncResult) -> None:
        self.stdout.write("\r" + self.summary(result) + "\x1b[K", ending="")
        self.stdout.flush()

    @staticmethod
    def summary(result: SyncResult) -> str:
        return (
            f"[{result.inbox}] {result.conversations} conversation(s) read, {result.conversations_created} new; "
            f"{result.messages_created} new message(s), {result.messages_updated} linked or updated; "
            f"{len(result.failures)} failure(s)"
        )
