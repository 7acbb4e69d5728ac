"""Local mirrors of UniLink objects, and the webhook log.

Conventions (as in dj-stripe):

- Every row has a local primary key ``id``; the platform's id is ``remote_id``, unique within
  its account or inbox, and NULL until the platform has created the object.
- Mapped fields carry the platform's names (``name``, ``status``, ``created_at``...) and hold the
  platform's values; ``raw`` keeps the last JSON the platform sent, as an escape hatch.
- Columns that only this app uses start with ``local_``, so they never clash with a remote name.
- Tokens and webhook secrets are never stored: they stay in settings.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import conf
from .encoding import CONVERSATION_STATUSES, MESSAGE_STATUSES, MESSAGE_TYPES, PRIORITIES
from .exceptions import ConfigurationError


def _choices(names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(n, n.replace("_", " ").capitalize()) for n in names]


class LocalState(models.TextChoices):
    """Where a row stands in this site's outbox."""

    REMOTE = "remote", _("Mirrored from UniLink")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class RemoteObject(models.Model):
    """Fields shared by every mirrored object."""

    raw = models.JSONField(
        _("raw remote JSON"), default=dict, blank=True, help_text=_("The last JSON UniLink sent for this object.")
    )
    local_created = models.DateTimeField(_("created here"), default=timezone.now, editable=False, db_index=True)
    local_updated = models.DateTimeField(_("updated here"), auto_now=True)

    class Meta:
        abstract = True


class OutboxMixin(models.Model):
    """Bookkeeping for objects this site creates on the platform through Celery tasks."""

    local_state = models.CharField(
        _("delivery state"), max_length=16, choices=LocalState.choices, default=LocalState.REMOTE, db_index=True
    )
    local_attempts = models.PositiveIntegerField(_("attempts"), default=0)
    local_error = models.TextField(_("last error"), blank=True)
    local_state_changed = models.DateTimeField(_("state changed"), default=timezone.now)

    class Meta:
        abstract = True


class Account(RemoteObject):
    """A UniLink account on one installation (base URL)."""

    base_url = models.CharField(_("base URL"), max_length=255)
    remote_id = models.PositiveIntegerField(_("account id"))
    name = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = _("account")
        constraints = [
            models.UniqueConstraint(fields=["base_url", "remote_id"], name="unilink_account_unique_remote"),
        ]

    def __str__(self) -> str:
        return self.name or f"Account {self.remote_id} on {self.base_url}"


class InboxManager(models.Manager["Inbox"]):
    def for_key(self, key: str = conf.DEFAULT_INBOX) -> Inbox:
        """The row of configured inbox ``key``, created from settings when missing (race-safe).

        When settings now give ``key`` another installation, account or inbox id, an unused row
        follows them; a row that already has contacts or conversations does not, since those
        belong to the old remote inbox (sending them to the new one would reach a stranger's
        conversation with the same display id): that raises ``ConfigurationError``.
        """
        config = conf.get_inbox_config(key)
        account, _created = Account.objects.get_or_create(
            base_url=config.api_base, remote_id=conf.as_int(config.account_id)
        )
        inbox, created = self.get_or_create(
            key=key, defaults={"account": account, "remote_id": conf.as_int(config.inbox_id)}
        )
        if not created and (inbox.account_id != account.pk or inbox.remote_id != conf.as_int(config.inbox_id)):
            if inbox.contact_inboxes.exists() or inbox.conversations.exists():
                raise ConfigurationError(
                    f"The inbox {key!r} was UniLink inbox {inbox.remote_id} of account {inbox.account.remote_id} "
                    f"on {inbox.account.base_url}, and has conversations here; {config.setting_name('INBOX_ID')} "
                    f"and its account now say inbox {config.inbox_id} of account {config.account_id} on "
                    f"{config.api_base}. Restore the setting, or give the new inbox another key (a new "
                    "entry in UNILINK['INBOXES']), or rename the old row's key in the admin or shell "
                    f"(Inbox.objects.filter(key={key!r}).update(key='{key}-old')) to keep its history."
                )
            inbox.account = account
            inbox.remote_id = conf.as_int(config.inbox_id)
            inbox.save(update_fields=["account", "remote_id", "local_updated"])
        return inbox


class Inbox(RemoteObject):
    """A configured API-channel inbox. ``key`` is its name in ``UNILINK`` ("default", "sales"...)."""

    key = models.SlugField(_("settings key"), max_length=100, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="inboxes")
    remote_id = models.PositiveIntegerField(_("inbox id"))
    name = models.CharField(max_length=255, blank=True)
    channel_type = models.CharField(max_length=64, blank=True)
    webhook_url = models.CharField(_("webhook URL on UniLink"), max_length=2000, blank=True)

    objects = InboxManager()

    class Meta:
        verbose_name = _("inbox")
        verbose_name_plural = _("inboxes")
        constraints = [
            models.UniqueConstraint(fields=["account", "remote_id"], name="unilink_inbox_unique_remote"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.name or 'inbox'} #{self.remote_id})"

    @property
    def config(self) -> conf.InboxConfig:
        """This inbox's settings, read now."""
        return conf.get_inbox_config(self.key)


class Contact(RemoteObject, OutboxMixin):
    """A person, mirrored from (or created on) the platform. Contacts belong to an account."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="contacts")
    remote_id = models.PositiveBigIntegerField(_("contact id"), null=True, blank=True)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True, db_index=True)
    phone_number = models.CharField(max_length=255, blank=True)
    identifier = models.CharField(
        max_length=255, blank=True, db_index=True, help_text=_("Your own id for this person, unique per account.")
    )
    custom_attributes = models.JSONField(default=dict, blank=True)
    additional_attributes = models.JSONField(default=dict, blank=True)
    # An optional link to any host-project object (usually a user), without requiring AUTH_USER_MODEL.
    user_content_type = models.ForeignKey(
        ContentType, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # NULL, not "", for "no link": the unique constraint below must ignore unlinked contacts.
    user_object_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    user = GenericForeignKey("user_content_type", "user_object_id")

    class Meta:
        verbose_name = _("contact")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "remote_id"],
                condition=Q(remote_id__isnull=False),
                name="unilink_contact_unique_remote",
            ),
            models.UniqueConstraint(
                fields=["account", "identifier"], condition=~Q(identifier=""), name="unilink_contact_unique_identifier"
            ),
            models.UniqueConstraint(
                fields=["account", "user_content_type", "user_object_id"],
                condition=Q(user_object_id__isnull=False),
                name="unilink_contact_unique_user",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.identifier or self.phone_number or f"Contact {self.pk}"


class ContactInbox(RemoteObject):
    """A contact's session on an inbox, identified by its ``source_id``."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="contact_inboxes")
    inbox = models.ForeignKey(Inbox, on_delete=models.PROTECT, related_name="contact_inboxes")
    source_id = models.CharField(_("source id"), max_length=255)
    remote_id = models.PositiveBigIntegerField(_("contact inbox id"), null=True, blank=True)
    hmac_verified = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("contact inbox")
        verbose_name_plural = _("contact inboxes")
        constraints = [
            models.UniqueConstraint(fields=["inbox", "source_id"], name="unilink_contactinbox_unique_source"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} on {self.inbox.key} ({self.source_id})"


class Conversation(RemoteObject, OutboxMixin):
    """A conversation. ``remote_id`` is the platform's per-account display id."""

    inbox = models.ForeignKey(Inbox, on_delete=models.PROTECT, related_name="conversations")
    contact_inbox = models.ForeignKey(ContactInbox, on_delete=models.PROTECT, related_name="conversations")
    remote_id = models.PositiveIntegerField(_("conversation id"), null=True, blank=True)
    uuid = models.UUIDField(_("remote uuid"), null=True, blank=True)
    status = models.CharField(max_length=16, choices=_choices(CONVERSATION_STATUSES), default="open", db_index=True)
    priority = models.CharField(max_length=16, choices=_choices(PRIORITIES), blank=True)
    assignee_remote_id = models.PositiveBigIntegerField(_("assignee id"), null=True, blank=True)
    assignee_type = models.CharField(max_length=32, blank=True, help_text=_('"User" or "AgentBot".'))
    assignee_name = models.CharField(max_length=255, blank=True)
    labels = models.JSONField(default=list, blank=True)
    custom_attributes = models.JSONField(default=dict, blank=True)
    additional_attributes = models.JSONField(default=dict, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(
        null=True, blank=True, help_text=_("The platform's last change; older events never overwrite newer state.")
    )
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # Outbox bookkeeping (django_unilink.outbox): a status change waiting to be sent, and the
    # drain lease that keeps one worker at a time on a conversation (also: paused, task queued).
    local_pending_status = models.CharField(
        _("status to send"), max_length=16, choices=_choices(CONVERSATION_STATUSES), blank=True
    )
    local_lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    local_lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("conversation")
        constraints = [
            models.UniqueConstraint(
                fields=["inbox", "remote_id"],
                condition=Q(remote_id__isnull=False),
                name="unilink_conversation_unique_remote",
            ),
        ]

    def __str__(self) -> str:
        if self.remote_id:
            return f"Conversation #{self.remote_id} ({self.inbox.key})"
        return f"Conversation (local {self.pk}, not yet on UniLink)"

    @property
    def contact(self) -> Contact:
        return self.contact_inbox.contact


class Message(RemoteObject, OutboxMixin):
    """A message of a conversation: mirrored from UniLink, or written here and sent by the outbox."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    remote_id = models.PositiveBigIntegerField(_("message id"), null=True, blank=True)
    # NULL for messages without one (agents' replies): several may share a conversation.
    source_id = models.CharField(  # noqa: DJ001
        _("source id"),
        max_length=255,
        null=True,
        blank=True,
        help_text=_("Idempotency key this site gives the messages it sends; UniLink stores and returns it."),
    )
    content = models.TextField(blank=True)
    message_type = models.CharField(max_length=16, choices=_choices(MESSAGE_TYPES), default="incoming", db_index=True)
    content_type = models.CharField(max_length=32, default="text")
    content_attributes = models.JSONField(default=dict, blank=True)
    private = models.BooleanField(default=False, help_text=_("An internal note: never show it to the end user."))
    status = models.CharField(
        _("remote status"), max_length=16, choices=_choices(MESSAGE_STATUSES), blank=True, db_index=True
    )
    sender_type = models.CharField(
        max_length=32, blank=True, help_text=_('"contact", "user", "agent_bot", "captain_assistant", or empty.')
    )
    sender_remote_id = models.PositiveBigIntegerField(_("sender id"), null=True, blank=True)
    sender_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(
        default=timezone.now,
        db_index=True,
        help_text=_("The platform's time once known; until then, when it was written here."),
    )
    updated_at = models.DateTimeField(null=True, blank=True)
    # A delivery report (services.report_status) waiting to be sent to the platform.
    local_report_status = models.CharField(
        _("status to report"), max_length=16, choices=_choices(MESSAGE_STATUSES), blank=True
    )
    local_report_error = models.TextField(_("error to report"), blank=True)

    class Meta:
        verbose_name = _("message")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "remote_id"],
                condition=Q(remote_id__isnull=False),
                name="unilink_message_unique_remote",
            ),
            models.UniqueConstraint(
                fields=["conversation", "source_id"],
                condition=Q(source_id__isnull=False),
                name="unilink_message_unique_source",
            ),
        ]
        indexes = [models.Index(fields=["conversation", "local_state"], name="unilink_msg_conv_state")]

    def __str__(self) -> str:
        text = self.content if len(self.content) <= 60 else self.content[:57] + "..."
        return f"{self.message_type}: {text}" if text else f"{self.message_type} message {self.pk}"

    @property
    def is_deleted(self) -> bool:
        return bool(isinstance(self.content_attributes, dict) and self.content_attributes.get("deleted"))

    @property
    def external_error(self) -> str:
        if isinstance(self.content_attributes, dict):
            return str(self.content_attributes.get("external_error") or "")
        return ""

    @property
    def is_from_this_site(self) -> bool:
        """True for messages this site wrote (and sends through the outbox)."""
        return self.local_state != LocalState.REMOTE


def attachment_upload_to(instance: Attachment, filename: str) -> str:
    return f"unilink/attachments/{timezone.now():%Y/%m}/{filename}"


class Attachment(RemoteObject):
    """A file of a message. Outbound files live in ``file`` until (and after) they are sent."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    remote_id = models.PositiveBigIntegerField(_("attachment id"), null=True, blank=True)
    file_type = models.CharField(max_length=32, blank=True)
    file = models.FileField(upload_to=attachment_upload_to, blank=True, max_length=500)
    filename = models.CharField(max_length=255, blank=True)
    mime_type = models.CharField(_("content type"), max_length=255, blank=True)
    extension = models.CharField(max_length=32, blank=True)
    data_url = models.URLField(max_length=2000, blank=True)
    thumb_url = models.URLField(max_length=2000, blank=True)
    file_size = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("attachment")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.filename or self.data_url or f"Attachment {self.pk}"


class WebhookEvent(models.Model):
    """The raw log of one webhook delivery, written before it is processed."""

    class State(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")
        IGNORED = "ignored", _("Ignored")
        INVALID = "invalid", _("Invalid")

    inbox = models.ForeignKey(Inbox, on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_events")
    inbox_key = models.CharField(max_length=100, blank=True)
    delivery_id = models.CharField(_("delivery id"), max_length=100, null=True, blank=True)  # noqa: DJ001
    event = models.CharField(max_length=100, blank=True, db_index=True)
    headers = models.JSONField(default=dict, blank=True, help_text=_("Request headers, signatures redacted."))
    body = models.TextField(blank=True)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    valid = models.BooleanField(default=False, help_text=_("Whether the signature (or URL token) was verified."))
    invalid_reason = models.CharField(max_length=255, blank=True)
    signed_at = models.DateTimeField(_("signature timestamp"), null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery_id"],
                condition=Q(delivery_id__isnull=False, valid=True),
                name="unilink_webhookevent_unique_delivery",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event or 'unknown event'} ({self.delivery_id or 'no delivery id'})"

    @property
    def payload(self) -> Any:
        """The body decoded as JSON, or ``None`` when it is not JSON."""
        import json

        try:
            return json.loads(self.body)
        except ValueError:
            return None
