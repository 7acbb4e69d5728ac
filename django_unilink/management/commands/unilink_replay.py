"""``manage.py unilink_replay``: process stored webhook deliveries again."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ... import conf
from ...models import WebhookEvent
from ...receiving import replay
from ...sync import parse_since


class Command(BaseCommand):
    help = (
        "Process stored webhook deliveries again (verified ones only), in the order they arrived. "
        "Safe on deliveries processed already: nothing current changes and no signal is sent twice. "
        "Choose the deliveries with --failed, --stuck, --since and/or --ids (combined with AND). "
        "Exits with status 1 if any replay fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--failed", action="store_true", help="Only deliveries whose processing failed.")
        parser.add_argument(
            "--stuck",
            action="store_true",
            help="Only deliveries still waiting for a worker after UNILINK['STUCK_AFTER'] seconds (lost tasks).",
        )
        parser.add_argument(
            "--since",
            metavar="WHEN",
            help="Only deliveries received since WHEN: a date (2026-06-18), a date and time, or an age (30m, 2h, 7d).",
        )
        parser.add_argument("--ids", metavar="PK", nargs="+", type=int, help="Only these WebhookEvent primary keys.")
        parser.add_argument("--inbox", metavar="KEY", help="Only deliveries to this inbox key.")
        parser.add_argument("--dry-run", action="store_true", help="List what would be replayed; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not (options["failed"] or options["stuck"] or options["since"] or options["ids"]):
            raise CommandError("Say what to replay: --failed, --stuck, --since WHEN and/or --ids PK [PK ...].")
        events = WebhookEvent.objects.filter(valid=True).order_by("received_at", "pk")
        if options["failed"]:
            events = events.filter(state=WebhookEvent.State.FAILED)
        if options["stuck"]:
            cutoff = timezone.now() - dt.timedelta(seconds=float(conf.get_setting("STUCK_AFTER")))
            events = events.filter(state=WebhookEvent.State.RECEIVED, received_at__lt=cutoff)
        if options["since"]:
            try:
                events = events.filter(received_at__gte=parse_since(options["since"]))
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        if options["ids"]:
            events = events.filter(pk__in=options["ids"])
        if options["inbox"]:
            events = events.filter(inbox_key=options["inbox"])
        pks = list(events.values_list("pk", flat=True))
        if options["dry_run"]:
            self.stdout.write(f"{len(pks)} webhook event(s) would be replayed: {', '.join(map(str, pks)) or '-'}")
            return
        result = replay(pks)
        for pk, state in result.states.items():
            if options["verbosity"] >= 2 or state == WebhookEvent.State.FAILED:
                self.stdout.write(f"  webhook event {pk}: {state}")
        summary = (
            f"Replayed {len(pks)}: {result.processed} processed, {result.failed} failed, {result.skipped} invalid."
        )
        if result.failed:
            raise CommandError(summary + " See the failed rows' last_error in the admin.")
        self.stdout.write(self.style.SUCCESS(summary))
