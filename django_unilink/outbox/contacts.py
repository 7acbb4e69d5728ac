"""Creating (or finding and linking) a contact on UniLink, exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..client import UnilinkClient
from ..exceptions import APIError, UnilinkError, ValidationError
from ..mapping import contact_fields
from ..models import Contact, ContactInbox, LocalState
from .leases import lease_seconds
from .policy import Busy, Conflict, client_for, error_text, record_failure


class ContactFailed(UnilinkError):
    """The contact could not be created on UniLink (its ``local_error`` says why)."""


def _claim_contact(contact_pk: int) -> tuple[bool, bool]:
    """Claim a contact for creation: ``(claimed, was_stale)``.

    A contact in ``sending`` for longer than the lease time belonged to a worker that died.
    """
    now = timezone.now()
    stale_before = now - dt.timedelta(seconds=lease_seconds())
    base = Contact.objects.filter(pk=contact_pk, remote_id__isnull=True)
    values = {
        "local_state": LocalState.SENDING,
        "local_attempts": F("local_attempts") + 1,
        "local_state_changed": now,
        "local_updated": now,
    }
    if base.filter(local_state=LocalState.QUEUED).update(**values):
        return True, False
    if base.filter(local_state=LocalState.SENDING, local_state_changed__lt=stale_before).update(**values):
        return True, True
    return False, False


def ensure_remote_contact(contact_pk: int) -> Contact:
    """Create the contact on UniLink unless it exists there already; returns the fresh row.

    Raises :class:`Busy` when another worker is creating it, :class:`RetryLater` after a
    retryable error, :class:`ContactFailed` when it failed for good (now or earlier).
    """
    claimed, stale = _claim_contact(contact_pk)
    contact = Contact.objects.select_related("account").get(pk=contact_pk)
    if not claimed:
        if contact.remote_id is not None:
            return contact
        if contact.local_state == LocalState.FAILED:
            raise ContactFailed(contact.local_error or "the contact could not be created")
        if contact.local_state == LocalState.REMOTE:
            raise ContactFailed("the contact has no UniLink id and is not queued for creation")
        raise Busy()
    contact_inbox = contact.contact_inboxes.select_related("inbox").order_by("pk").first()
    try:
        if contact_inbox is None:
            raise Conflict(f"Contact {contact.pk} has no contact inbox; create it with services.ensure_contact().")
        client = client_for(contact_inbox.inbox)
        with client:
            reconcile = stale or bool(contact.local_error)
            data = _find_contact(contact, contact_inbox, client) if reconcile else None
            link = _source_of(data, contact_inbox) if data is not None else None
            if data is None:
                try:
                    created = client.create_contact(
                        inbox_id=contact_inbox.inbox.remote_id,
                        source_id=contact_inbox.source_id,
                        name=contact.name or None,
                        identifier=contact.identifier or None,
                        email=contact.email or None,
                        phone_number=contact.phone_number or None,
                        custom_attributes=contact.custom_attributes or None,
                        additional_attributes=contact.additional_attributes or None,
                    )
                    data, link = created["contact"], created.get("contact_inbox") or {}
                except ValidationError as exc:
                    # The platform knows this person already (same identifier/email/phone):
                    # find that contact and link it, rather than fail or duplicate.
                    if "already been taken" not in exc.remote_message.lower():
                        raise
                    data = _find_existing_contact(contact, client, exc.attributes)
                    if data is None:
                        raise
            if link is None:
                link = client.create_contact_inbox(
                    int(data["id"]), inbox_id=contact_inbox.inbox.remote_id, source_id=contact_inbox.source_id
                )
        _adopt_contact(contact, data, contact_inbox, link)
    except Exception as exc:
        outcome = record_failure(Contact, contact.pk, exc, contact.local_attempts)
        if outcome is None:
            raise ContactFailed(error_text(exc)) from exc
        raise outcome from exc
    return Contact.objects.select_related("account").get(pk=contact_pk)


def _searchable(contact: Contact) -> list[tuple[str, str]]:
    return [(f, getattr(contact, f)) for f in ("identifier", "email", "phone_number", "name") if getattr(contact, f)]


def _same(field: str, a: Any, b: Any) -> bool:
    if not a or not b:
        return False
    if field == "email":
        return str(a).strip().lower() == str(b).strip().lower()
    return str(a) == str(b)


def _source_of(data: dict[str, Any], contact_inbox: ContactInbox) -> dict[str, Any] | None:
    """The entry of a contact's ``contact_inboxes`` with our ``source_id``, if any."""
    for item in data.get("contact_inboxes") or []:
        if isinstance(item, dict) and item.get("source_id") == contact_inbox.source_id:
            return item
    return None


def _find_contact(contact: Contact, contact_inbox: ContactInbox, client: UnilinkClient) -> dict[str, Any] | None:
    """After an unknown outcome: the remote contact holding our contact-inbox ``source_id``, or one
    with the same identifier/email/phone (created by someone else), or ``None``."""
    same: dict[str, Any] | None = None
    for field, value in _searchable(contact):
        for found in client.search_contacts(value):
            if _source_of(found, contact_inbox) is not None:
                return found
            if same is None and field != "name" and _same(field, found.get(field), value):
                same = found
    return same


def _find_existing_contact(contact: Contact, client: UnilinkClient, attributes: Iterable[str]) -> dict[str, Any] | None:
    taken = set(attributes)
    for field in ("identifier", "email", "phone_number"):
        value = getattr(contact, field)
        if not value or (taken and field not in taken):
            continue
        for found in client.search_contacts(value):
            if _same(field, found.get(field), value):
                return found
    return None


def _adopt_contact(contact: Contact, data: dict[str, Any], contact_inbox: ContactInbox, link: dict[str, Any]) -> None:
    fields = contact_fields(data)
    if fields["remote_id"] is None:
        raise APIError(f"The platform returned a contact without an id: {str(data)[:200]}")
    if contact.identifier and fields["identifier"] and fields["identifier"] != contact.identifier:
        raise Conflict(
            f"UniLink already has contact {fields['remote_id']} with the same email or phone number but the "
            f"identifier {fields['identifier']!r}, not {contact.identifier!r}. Use that identifier, or change the "
            "contact's email/phone, then retry."
        )
    # Keep what this site knows and the platform does not (e.g. an identifier on a contact
    # found by email): the row must stay findable by ensure_contact().
    for key in ("name", "email", "phone_number", "identifier"):
        if not fields[key]:
            fields[key] = getattr(contact, key)
    now = timezone.now()
    try:
        with transaction.atomic():
            other = (
                Contact.objects.select_for_update()
                .filter(account_id=contact.account_id, remote_id=fields["remote_id"])
                .exclude(pk=contact.pk)
                .first()
            )
            if other is not None:
                _fold_contact(other, into=contact)
            Contact.objects.filter(pk=contact.pk).update(
                **fields,
                local_state=LocalState.SENT,
                local_error="",
                local_state_changed=now,
                local_updated=now,
            )
            # A non-empty ``raw`` marks the contact inbox as confirmed by the platform.
            ContactInbox.objects.filter(pk=contact_inbox.pk).update(
                raw=link or {"source_id": contact_inbox.source_id}, local_updated=now
            )
    except IntegrityError as exc:
        raise Conflict(f"Could not link contact {contact.pk} to UniLink contact {fields['remote_id']}: {exc}") from exc


def _fold_contact(other: Contact, *, into: Contact) -> None:
    """Merge a mirrored row of the same remote contact into ``into`` (the row host code holds).

    Only pure mirrors (written by webhooks or sync) are folded; two rows written by this site
    for one remote contact are a conflict the host must resolve.
    """
    if other.local_state != LocalState.REMOTE:
        raise Conflict(
            f"UniLink contact {other.remote_id} is already linked to local contact {other.pk}; "
            f"use that contact instead of {into.pk}."
        )
    if (
        other.user_object_id
        and into.user_object_id
        and ((other.user_content_type_id, other.user_object_id) != (into.user_content_type_id, into.user_object_id))
    ):
        raise Conflict(f"Contacts {other.pk} and {into.pk} are the same UniLink contact but linked to different users.")
    user = (other.user_content_type_id, other.user_object_id)
    ContactInbox.objects.filter(contact=other).update(contact=into)
    other.delete()
    if user[1] and not into.user_object_id:
        Contact.objects.filter(pk=into.pk).update(user_content_type_id=user[0], user_object_id=user[1])


def link_contact_inboxes(contact: Contact) -> None:
    """Create on UniLink the contact inboxes recorded here but never confirmed there."""
    for contact_inbox in contact.contact_inboxes.select_related("inbox").filter(raw={}).order_by("pk"):
        with client_for(contact_inbox.inbox) as client:
            data = client.create_contact_inbox(
                int(contact.remote_id),  # type: ignore[arg-type]
                inbox_id=contact_inbox.inbox.remote_id,
                source_id=contact_inbox.source_id,
            )
        ContactInbox.objects.filter(pk=contact_inbox.pk).update(raw=data, local_updated=timezone.now())
