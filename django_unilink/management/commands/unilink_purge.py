"""``manage.py unilink_purge``: bound the webhook log's growth."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ... import conf
from ...models import WebhookEvent
from ...receiving import purge_webhook_events


class Command(BaseCommand):
    help = (
        "Delete webhook log rows (WebhookEvent) received more than N days ago. "
        "Mirrored contacts, conversations and messages are not touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            metavar="N",
            help="Keep this many days of log (default: UNILINK['WEBHOOK_LOG_DAYS'], 30 unless set).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is None:
            days = int(conf.get_setting("WEBHOOK_LOG_DAYS"))
        if days < 0:
            raise CommandError("--days must be 0 or more.")
        if options["dry_run"]:
            cutoff = timezone.now() - dt.timedelta(days=days)
            count = WebhookEvent.objects.filter(received_at__lt=cutoff).count()
            self.stdout.write(f"{count} webhook event(s) older than {days} day(s) would be deleted.")
            return
        count = purge_webhook_events(days)
        self.stdout.write(self.style.SUCCESS(f"Deleted {count} webhook event(s) older than {days} day(s)."))
