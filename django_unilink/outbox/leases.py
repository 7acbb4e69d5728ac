"""The conversation lease: one drainer at a time per conversation, pauses, "a task is queued".

A lease is two columns of the conversation row (``local_lease_owner``, ``local_lease_until``),
taken and released with conditional ``UPDATE`` statements, so it works alike on SQLite and
PostgreSQL and holds no transaction open during HTTP calls. States:

- free: ``until`` is NULL or past;
- held by a drainer: ``owner`` is its id (renewed while it works; it expires if the worker dies);
- paused: no owner, ``until`` in the future (a retry is scheduled for then);
- queued: ``owner`` is :data:`QUEUED_MARK` (a task is on its way; it takes the lease over).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .. import conf
from ..models import Conversation, Message
from .policy import PENDING


def lease_seconds() -> float:
    """How long a drain lease lasts without renewal: ``STUCK_AFTER``, but always longer than a few
    requests at the configured timeouts (a lease must outlive the call it protects)."""
    request = float(conf.get_setting("CONNECT_TIMEOUT")) + float(conf.get_setting("READ_TIMEOUT"))
    return max(float(conf.get_setting("STUCK_AFTER")), 4 * request)


@dataclass
class LeaseState:
    acquired: bool
    paused_until: dt.datetime | None = None
    idle: bool = False
    #: When the lease of the worker holding the conversation ends, unless it is renewed.
    held_until: dt.datetime | None = None


#: ``local_lease_owner`` of a conversation with a task queued for it and not started yet.
QUEUED_MARK = "queued"


def acquire(conversation_pk: int, owner: str, *, why: bool = True) -> LeaseState:
    """Take the conversation's lease if it is free or only marked as queued; one statement.

    When it is taken, ``why`` asks for a second query telling a pause (a retry is scheduled)
    from a busy lease.
    """
    now = timezone.now()
    takeable = Q(local_lease_until__isnull=True) | Q(local_lease_until__lte=now) | Q(local_lease_owner=QUEUED_MARK)
    got = (
        Conversation.objects.filter(pk=conversation_pk)
        .filter(takeable)
        .update(local_lease_owner=owner, local_lease_until=now + dt.timedelta(seconds=lease_seconds()))
    )
    if got:
        return LeaseState(True)
    if not why:
        return LeaseState(False)
    row = Conversation.objects.filter(pk=conversation_pk).values("local_lease_owner", "local_lease_until").first()
    if row is None:
        return LeaseState(False, idle=True)
    if not row["local_lease_owner"] and row["local_lease_until"] and row["local_lease_until"] > now:
        return LeaseState(False, paused_until=row["local_lease_until"])
    return LeaseState(False, held_until=row["local_lease_until"])


def mark_queued(conversation_pk: int) -> bool:
    """Mark a free conversation as having a task queued; ``False`` when it needs none.

    Not free means: a worker holds it (it looks for new work after releasing it), it is paused
    (a retry is scheduled), or a task is queued already (it will see the new work). A lost
    task's mark expires like a dead worker's lease; :func:`sweep_stuck` covers the gap.
    """
    now = timezone.now()
    return bool(
        Conversation.objects.filter(pk=conversation_pk)
        .filter(Q(local_lease_until__isnull=True) | Q(local_lease_until__lte=now))
        .update(local_lease_owner=QUEUED_MARK, local_lease_until=now + dt.timedelta(seconds=lease_seconds()))
    )


class Lease:
    """The lease a drainer holds; :meth:`keep` renews it before it could run out."""

    def __init__(self, conversation_pk: int, owner: str) -> None:
        self.conversation_pk = conversation_pk
        self.owner = owner
        self.seconds = lease_seconds()
        self.renewed = time.monotonic()

    def keep(self) -> None:
        # Renew once a quarter of the lease has passed: a write per message would be wasted.
        if time.monotonic() - self.renewed < self.seconds / 4:
            return
        until = timezone.now() + dt.timedelta(seconds=self.seconds)
        if not Conversation.objects.filter(pk=self.conversation_pk, local_lease_owner=self.owner).update(
            local_lease_until=until
        ):
            raise LeaseLost()
        self.renewed = time.monotonic()


def release(conversation_pk: int, owner: str, pause: float | None) -> None:
    # With a pause the lease stays, ownerless, until the retry is due: other tasks of this
    # conversation leave it alone so that nothing overtakes the message being retried.
    until = timezone.now() + dt.timedelta(seconds=pause) if pause is not None else None
    Conversation.objects.filter(pk=conversation_pk, local_lease_owner=owner).update(
        local_lease_owner="", local_lease_until=until
    )


def release_if_idle(conversation_pk: int, owner: str) -> bool:
    """Release the lease unless work arrived meanwhile; one statement, so nothing slips between.

    Whoever queued that work saw the lease held and queued no task: it is ours to do.
    """
    return bool(
        Conversation.objects.filter(pk=conversation_pk, local_lease_owner=owner)
        .exclude(work_q())
        .update(local_lease_owner="", local_lease_until=None)
    )


class LeaseLost(Exception):
    """The lease expired and another worker took the conversation: stop at once."""


def pending_messages(conversation_pk: Any) -> Exists:
    return Exists(Message.objects.filter(conversation_id=conversation_pk, local_state__in=PENDING))


def pending_reports(conversation_pk: Any) -> Exists:
    return Exists(
        Message.objects.filter(conversation_id=conversation_pk, remote_id__isnull=False).exclude(local_report_status="")
    )


def work_q() -> Q:
    """Conversations with something to send (for filters on ``Conversation``)."""
    return (
        Q(local_state__in=PENDING)
        | (~Q(local_pending_status="") & Q(remote_id__isnull=False))
        | Q(pending_messages(OuterRef("pk")))
        | Q(pending_reports(OuterRef("pk")))
    )
