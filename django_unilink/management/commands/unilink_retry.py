"""``manage.py unilink_retry``: queue failed or stuck outbox rows again."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, QuerySet
from django.utils import timezone

from ... import conf, outbox
from ...models import Contact, Conversation, LocalState, Message


class Command(BaseCommand):
    help = (
        "Queue again what the outbox could not send: messages, conversations and contacts that failed "
        "(--failed; e.g. refused by UniLink, or out of retries during an outage) and/or that are stuck "
        "(--stuck: queued or sending for longer than UNILINK['STUCK_AFTER'] seconds, e.g. after a lost "
        "task). Attempts restart from zero; before posting again, each row is first looked for on "
        "UniLink by its source_id, so nothing is sent twice. Messages keep their order within a "
        "conversation. Needs a running Celery worker (or eager mode) to do the sending."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--failed", action="store_true", help="Retry rows in the 'failed' state.")
        parser.add_argument(
            "--stuck",
            action="store_true",
            help="Retry rows 'queued' or 'sending' for longer than UNILINK['STUCK_AFTER'] seconds.",
        )
        parser.add_argument(
            "--since",
            metavar="WHEN",
            help="Only rows written here since WHEN: a date (2026-06-18), a date and time "
            "(2026-06-18T09:30:00+02:00), or an age such as 90m, 2h, 7d.",
        )
        parser.add_argument(
            "--conversation",
            action="append",
            type=int,
            dest="conversations",
            metavar="ID",
            help="Only this conversation: its local id, as in the admin's URL (not the UniLink id). Repeatable.",
        )
        parser.add_argument(
            "--inbox",
            action="append",
            dest="inboxes",
            metavar="KEY",
            help="Only conversations and contacts of this inbox key ('default', or a key of UNILINK['INBOXES']). "
            "Repeatable.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be retried.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["failed"] and not options["stuck"]:
            raise CommandError("Say what to retry: --failed, --stuck, or both. See --help.")
        states: list[str] = []
        if options["failed"]:
            states.append(LocalState.FAILED)
        since = _parse_since(options["since"])
        conversation_pks = options["conversations"] or []
        missing = sorted(
            set(conversation_pks)
            - set(Conversation.objects.filter(pk__in=conversation_pks).values_list("pk", flat=True))
        )
        if missing:
            raise CommandError(
                f"No conversation with local id {', '.join(map(str, missing))}. --conversation takes the local id "
                "shown in the admin's URL, not the UniLink conversation id."
            )
        stuck_before = timezone.now() - dt.timedelta(seconds=float(conf.get_setting("STUCK_AFTER")))

        def select(rows: QuerySet[Any], *, conversation: str, inbox: str) -> QuerySet[Any]:
            condition = Q(local_state__in=states)
            if options["stuck"]:
                condition |= Q(local_state__in=outbox.PENDING, local_state_changed__lt=stuck_before)
            rows = rows.filter(condition)
            if since is not None:
                rows = rows.filter(local_created__gte=since)
            if conversation_pks:
                rows = rows.filter(**{f"{conversation}__in": conversation_pks})
            if options["inboxes"]:
                rows = rows.filter(**{f"{inbox}__in": options["inboxes"]})
            # Fixed now: retrying messages re-arms their conversation and contact too.
            return rows.model._default_manager.filter(pk__in=list(rows.values_list("pk", flat=True)))

        messages = select(Message.objects.all(), conversation="conversation", inbox="conversation__inbox__key")
        conversations = select(Conversation.objects.all(), conversation="pk", inbox="inbox__key")
        contacts = select(
            Contact.objects.filter(remote_id__isnull=True),
            conversation="contact_inboxes__conversations",
            inbox="contact_inboxes__inbox__key",
        )
        counts = (messages.count(), conversations.count(), contacts.count())
        if options["dry_run"]:
            self.stdout.write(
                f"Would queue again: {counts[0]} message(s), {counts[1]} conversation(s), {counts[2]} contact(s)."
            )
            return
        done = (
            outbox.retry_messages(messages),
            outbox.retry_conversations(conversations),
            outbox.retry_contacts(contacts),
        )
        self.stdout.write(
            self.style.SUCCESS(f"Queued again: {done[0]} message(s), {done[1]} conversation(s), {done[2]} contact(s).")
            if any(done)
            else "Nothing to retry."
        )


def _parse_since(value: str | None) -> dt.datetime | None:
    from ...receiving import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise CommandError(f"--{exc}") from None
