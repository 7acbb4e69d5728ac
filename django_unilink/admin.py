"""Admin pages to browse the mirrored UniLink data and the webhook log.

Mirrored rows are read-only here (see docs/admin.md): their truth is on UniLink, and a local edit
would never reach it and be overwritten by the next webhook. The only editable fields are local-only
ones (a contact's link to a host-project user). Nothing here shows an access token or a webhook
secret: raw JSON and webhook headers are redacted by key name, and any configured secret that still
appears in displayed text is replaced.

Actions: retry failed or stuck messages (django_unilink.outbox) and replay webhook deliveries
(django_unilink.receiving); each is defined beside the logic it runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import flatten, flatten_fieldsets
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from .models import Account, Attachment, Contact, ContactInbox, Conversation, Inbox, Message, WebhookEvent
from .outbox import retry_messages_action
from .receiving import replay_events_action

REDACTED = "[redacted]"
#: A JSON key or header whose lower-cased name contains one of these is never displayed.
SENSITIVE_NAME_PARTS = ("secret", "token", "signature", "authorization", "password", "cookie", "api_key", "apikey")
#: Settings values shorter than this are not scrubbed from text (they would match ordinary words).
_MIN_SCRUB_LENGTH = 6
#: A term this long or longer cannot be a remote id (they are at most 64-bit integers).
_MAX_ID_DIGITS = 18


# -- Redaction ---------------------------------------------------------------------------------


def is_sensitive(name: Any) -> bool:
    """Whether a JSON key or header name may hold a credential."""
    lowered = str(name).lower()
    return any(part in lowered for part in SENSITIVE_NAME_PARTS)


def redact(value: Any) -> Any:
    """A copy of JSON ``value`` with the values of sensitive keys replaced, at any depth."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_sensitive(k) and v not in (None, "") else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _setting_secrets(value: Any, sensitive: bool = False) -> Iterator[str]:
    """Every string under a sensitive key of ``settings.UNILINK``, however malformed the setting is."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _setting_secrets(item, sensitive or is_sensitive(key))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _setting_secrets(item, sensitive)
    elif sensitive and isinstance(value, str) and len(value.strip()) >= _MIN_SCRUB_LENGTH:
        yield value.strip()


def scrub(text: str) -> str:
    """``text`` with every token and secret of ``settings.UNILINK`` replaced (read now, never cached)."""
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted(set(_setting_secrets(getattr(settings, "UNILINK", None))), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def pretty_json(value: Any) -> SafeString:
    """JSON indented in a ``<pre>``, redacted and escaped."""
    text = json.dumps(redact(value), indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="unilink-json">{}</pre>', scrub(text))


def pretty_text(text: str) -> SafeString:
    """Free text (tracebacks, non-JSON bodies) in a ``<pre>``, scrubbed and escaped."""
    return format_html('<pre class="unilink-text">{}</pre>', scrub(text or ""))


# -- Shared admin behaviour -----------------------------------------------------------------------


class UnilinkModelAdmin(admin.ModelAdmin):
    """Base of every django-unilink admin: read-only mirrors, no adding, pretty raw JSON.

    Subclasses declare ``fieldsets`` (always: readonly fields are derived from them) and, for
    local-only data, ``editable_fields``.
    """

    #: Fields staff may edit; everything else in the fieldsets is read-only.
    editable_fields: tuple[str, ...] = ()
    #: Whether a digits-only search also matches ``remote_id`` exactly.
    search_remote_id = True
    list_per_page = 50

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        names = flatten_fieldsets(self.get_fieldsets(request, obj))
        return [name for name in names if name not in self.editable_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Rows come from UniLink (webhooks, sync) or from this site's outbox API, never typed in by hand.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a mirror removes only the local copy; UniLink keeps it and the next sync restores it.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A change page with nothing editable is shown as a view page (no Save button, POST refused).
        # Without an object (changelist) the permission stays, so actions needing it keep working.
        if obj is not None and not self.editable_fields:
            return False
        return super().has_change_permission(request, obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        # Remote ids are integers: matched exactly, and only for digit terms (an int lookup with "abc" would fail).
        if self.search_remote_id and term.isdigit() and len(term) < _MAX_ID_DIGITS:
            results = results | queryset.filter(remote_id=int(term))
        return results, may_have_duplicates

    # Links -------------------------------------------------------------------------------------

    def change_link(self, obj: Model | None, text: Any = None) -> str:
        """A link to ``obj``'s change page, or the empty-value marker."""
        if obj is None:
            return self.get_empty_value_display()
        opts = obj._meta
        url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk], current_app=self.admin_site.name
        )
        return format_html('<a href="{}">{}</a>', url, obj if text is None else text)

    def changelist_link(self, model: type[Model], text: Any, **params: Any) -> str:
        """A link to ``model``'s changelist filtered by ``params``."""
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=self.admin_site.name)
        return format_html('<a href="{}?{}">{}</a>', url, urlencode(params), text)

    # Pretty JSON of the fields every mirror has ----------------------------------------------------

    @admin.display(description=_("raw remote JSON"))
    def raw_json(self, obj: Any) -> SafeString:
        return pretty_json(obj.raw)


class ReadOnlyInline(admin.TabularInline):
    """A read-only tabular inline: rows are listed, linked, never added, changed or deleted here."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:  # type: ignore[override]
        return list(flatten(self.fields or ()))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ContactFilter(admin.SimpleListFilter):
    """Conversations of one contact (across its contact inboxes); used by links, shown only when active."""

    title = _("contact")
    parameter_name = "contact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Iterable[tuple[Any, str]]:
        value = self.value()
        if not value or not str(value).isdigit():
            return []
        contact = Contact.objects.filter(pk=int(value)).first()
        return [(value, str(contact) if contact else value)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and str(value).isdigit():
            return queryset.filter(contact_inbox__contact_id=int(value))
        return queryset


# -- Accounts and inboxes --------------------------------------------------------------------------


@admin.register(Account)
class AccountAdmin(UnilinkModelAdmin):
    list_display = ("__str__", "remote_id", "base_url", "name", "inboxes", "local_updated")
    search_fields = ("name", "base_url")
    fieldsets = (
        (None, {"fields": ("base_url", "remote_id", "name", "inboxes", "contacts")}),
        (_("Local bookkeeping"), {"fields": ("local_created", "local_updated")}),
        (_("Raw JSON"), {"fields": ("raw_json",), "classes": ("collapse",)}),
    )

    @admin.display(description=_("inboxes"))
    def inboxes(self, obj: Account) -> str:
        return self.changelist_link(Inbox, _("inboxes"), account__id__exact=obj.pk)

    @admin.display(description=_("contacts"))
    def contacts(self, obj: Account) -> str:
        return self.changelist_link(Contact, _("contacts"), account__id__exact=obj.pk)


@admin.register(Inbox)
class InboxAdmin(UnilinkModelAdmin):
    list_display = ("key", "remote_id", "name", "channel_type", "account_link", "configured", "local_updated")
    list_select_related = ("account",)
    list_filter = ("account", "channel_type")
    search_fields = ("key", "name")
    fieldsets = (
        (None, {"fields": ("key", "configured", "account", "remote_id", "name", "channel_type", "webhook_url")}),
        (_("Related"), {"fields": ("related",)}),
        (_("Local bookkeeping"), {"fields": ("local_created", "local_updated")}),
        (_("Raw JSON"), {"fields": ("raw_json",), "classes": ("collapse",)}),
    )

    @admin.display(description=_("account"), ordering="account__remote_id")
    def account_link(self, obj: Inbox) -> str:
        return self.change_link(obj.account)

    @admin.display(description=_("in settings"), boolean=True)
    def configured(self, obj: Inbox) -> bool:
        """Whether settings.UNILINK still defines this key (tokens stay there, never here)."""
        from . import conf
        from .exceptions import ConfigurationError

        try:
            return obj.key in conf.inbox_configs()
        except ConfigurationError:
            return False

    @admin.display(description=_("related"))
    def related(self, obj: Inbox) -> str:
        return format_html(
            "{} · {} · {}",
            self.changelist_link(Conversation, _("conversations"), inbox__id__exact=obj.pk),
            self.changelist_link(ContactInbox, _("contact inboxes"), inbox__id__exact=obj.pk),
            self.changelist_link(WebhookEvent, _("webhook events"), inbox_key=obj.key),
        )


# -- Contacts and their sessions ---------------------------------------------------------------------


class ContactInboxInline(ReadOnlyInline):
    model = ContactInbox
    fields = ("source_id", "inbox_key", "remote_id", "hmac_verified", "conversations")
    verbose_name_plural = _("contact inboxes")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("contact", "inbox")

    @admin.display(description=_("inbox"))
    def inbox_key(self, obj: ContactInbox) -> str:
        return obj.inbox.key

    @admin.display(description=_("conversations"))
    def conversations(self, obj: ContactInbox) -> str:
        url = reverse("admin:django_unilink_conversation_changelist", current_app=self.admin_site.name)
        return format_html('<a href="{}?contact_inbox__id__exact={}">{}</a>', url, obj.pk, _("conversations"))


@admin.register(Contact)
class ContactAdmin(UnilinkModelAdmin):
    list_display = (
        "__str__",
        "remote_id",
        "email",
        "phone_number",
        "identifier",
        "account_link",
        "local_state",
        "conversations",
        "local_updated",
    )
    list_select_related = ("account",)
    list_filter = ("local_state", "account", "contact_inboxes__inbox")
    search_fields = ("name", "email", "identifier", "phone_number")
    editable_fields = ("user_content_type", "user_object_id")
    inlines = (ContactInboxInline,)
    fieldsets = (
        (None, {"fields": ("account", "remote_id", "name", "email", "phone_number", "identifier", "conversations")}),
        (
            _("Link to a user of this site (local only, never sent to UniLink)"),
            {"fields": ("user_display", "user_content_type", "user_object_id")},
        ),
        (_("Attributes"), {"fields": ("custom_attributes_json", "additional_attributes_json")}),
        (
            _("Outbox"),
            {"fields": ("local_state", "local_attempts", "local_error", "local_state_changed")},
        ),
        (_("Local bookkeeping"), {"fields": ("local_created", "local_updated")}),
        (_("Raw JSON"), {"fields": ("raw_json",), "classes": ("collapse",)}),
    )

    @admin.display(description=_("account"), ordering="account__remote_id")
    def account_link(self, obj: Contact) -> str:
        return self.change_link(obj.account)

    @admin.display(description=_("conversations"))
    def conversations(self, obj: Contact) -> str:
        return self.changelist_link(Conversation, _("conversations"), contact=obj.pk)

    @admin.display(description=_("user"))
    def user_display(self, obj: Contact) -> str:
        try:
            user = obj.user
        except AttributeError:  # the linked model's app was removed
            user = None
        return str(user) if user is not None else self.get_empty_value_display()

    @admin.display(description=_("custom attributes"))
    def custom_attributes_json(self, obj: Contact) -> SafeString:
        return pretty_json(obj.custom_attributes)

    @admin.display(description=_("additional attributes"))
    def additional_attributes_json(self, obj: Contact) -> SafeString:
        return pretty_json(obj.additional_attributes)


class ConversationInline(ReadOnlyInline):
    model = Conversation
    fields = ("remote_id", "status", "assignee_name", "local_state", "last_activity_at", "messages")
    fk_name = "contact_inbox"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("inbox").order_by("-last_activity_at", "-pk")

    @admin.display(description=_("messages"))
    def messages(self, obj: Conversation) -> str:
        url = reverse("admin:django_unilink_message_changelist", current_app=self.admin_site.name)
        return format_html('<a href="{}?conversation__id__exact={}">{}</a>', url, obj.pk, _("messages"))


@admin.register(ContactInbox)
class ContactInboxAdmin(UnilinkModelAdmin):
    list_display = (
        "source_id",
        "contact_link",
        "inbox",
        "remote_id",
        "hmac_verified",
        "conversations",
        "local_created",
    )
    list_select_related = ("contact", "inbox")
    list_filter = ("inbox", "hmac_verified")
    search_fields = ("source_id", "contact__name", "contact__email", "contact__identifier", "contact__phone_number")
    inlines = (ConversationInline,)
    fieldsets = (
        (None, {"fields": ("contact", "inbox", "source_id", "remote_id", "hmac_verified", "conversations")}),
        (_("Local bookkeeping"), {"fields": ("local_created", "local_updated")}),
        (_("Raw JSON"), {"fields": ("raw_json",), "classes": ("collapse",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("contact", "inbox")

    @admin.display(description=_("contact"), ordering="contact__name")
    def contact_link(self, obj: ContactInbox) -> str:
        return self.change_link(obj.contact)

    @admin.display(description=_("conversations"))
    def conversations(self, obj: ContactInbox) -> str:
        return self.changelist_link(Conversation, _("conversations"), contact_inbox__id__exact=obj.pk)


# -- Conversations, messages, attachments -------------------------------------------------------------


class MessageInline(ReadOnlyInline):
    """The conversation's thread, oldest first, as the platform orders it."""

    model = Message
    fields = ("created_at", "message_type", "sender_name", "content", "private", "status", "local_state", "files")
    ordering = ("created_at", "pk")
    verbose_name_plural = _("messages (oldest first)")
    classes = ("unilink-thread",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).prefetch_related("attachments")

    @admin.display(description=_("attachments"))
    def files(self, obj: Message) -> str:
        names = [str(a) for a in obj.attachments.all()]  # prefetched: no query per row
        return ", ".join(names) if names else self.get_empty_value_display()


@admin.register(Conversation)
class ConversationAdmin(UnilinkModelAdmin):
    list_display = (
        "__str__",
        "remote_id",
        "inbox",
        "contact_link",
        "status",
        "priority",
        "assignee_name",
        "local_state",
        "last_activity_at",
        "messages",
    )
    list_select_related = ("inbox", "contact_inbox__contact")
    list_filter = ("inbox", "status", "priority", "local_state", "assignee_type", ContactFilter)
    search_fields = (
        "contact_inbox__contact__name",
        "contact_inbox__contact__email",
        "contact_inbox__contact__identifier",
        "contact_inbox__contact__phone_number",
        "contact_inbox__source_id",
        "assignee_name",
    )
    date_hierarchy = "created_at"
    inlines = (MessageInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "inbox",
                    "remote_id",
                    "uuid",
                    "contact_link",
                    "contact_inbox",
                    "status",
                    "priority",
                    "snoozed_until",
                    "messages",
                )
            },
        ),
        (_("Assignee"), {"fields": ("assignee_remote_id", "assignee_type", "assignee_name")}),
        (_("Attributes"), {"fields": ("labels_json", "custom_attributes_json", "additional_attributes_json")}),
        (_("Remote timestamps"), {"fields": ("created_at", "updated_at", "last_activity_at")}),
        (
            _("Outbox"),
            {
                "fields": (
                    "local_state",
                    "local_attempts",
                    "local_error",
                    "local_state_changed",
                    "local_pending_status",
                    "local_lease_owner",
                    "local_lease_until",
                )
            },
        ),
        (_("Local bookkeeping"), {"fields": ("local_created", "local_updated")}),
        (_("Raw JSON"), {"fields": ("raw_json",), "classes": ("collapse",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("inbox", "contact_inbox__contact", "contact_inbox__inbox")

    @admin.display(description=_("contact"), ordering="contact_inbox__contact__name")
    def contact_link(self, obj: Conversation) -> str:
        return self.change_link(obj.contact_inbox.contact)

    @admin.display(description=_("messages"))
    def messages(self, obj: Conversation) -> str:
        return self.changelist_link(Message, _("messages"), conversation__id__exact=obj.pk)

    @admin.display(description=_("labels"))
    def labels_json(self, obj: Conversation) -> SafeString:
        return pretty_json(obj.labels)

    @admin.display(description=_("custom attributes"))
    def custom_attributes_json(self, obj: Conversation) -> SafeString:
        return pretty_json(obj.custom_attributes)

    @admin.display(description=_("additional attributes"))
    def additional_attributes_json(self, obj: Conversation) -> SafeString:
        return pretty_json(obj.additional_attributes)


class AttachmentInline(ReadOnlyInline):
    model = Attachment
    fields = ("remote_id", "file_type", "filename", "mime_type", "file_size", "file", "remote_url")

    @admin.display(description=_("remote URL"))
    def remote_url(self, obj: Attachment) -> str:
        if not obj.data_url:
            return self.get_empty_value_display()
        return format_html('<a href="{}" rel="noreferrer noopener" target="_blank">{}</a>', obj.data_url, _("open"))


@admin.register(Message)
class MessageAdmin(UnilinkModelAdmin):
    list_display = (
        "short_content",
        "remote_id",
        "message_type",
        "private",
        "status",
        "local_state",
        "conversation_link",
        "contact_link",
        "sender_name",
        "created_at",
    )
    actions = [retry_messages_action]
    list_select_related = ("conversation__inbox", "conversation__contact_inbox__contact")
    list_filter = (
        "conversation__inbox",
        "message_type",
        "private",
        "status",
        "local_state",
        "content_type",
        "sender_type",
    )
    search_fields = ("content", "source_id", "sender_name")
    date_hierarchy = "created_at"
    inlines = (AttachmentInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "conversation",
                    "contact_link",
                    "remote_id",
                    "source_id",
                    "message_type",
                    "content_type",
                    "private",
                    "status",
                    "external_error",
                    "content",
                )
            },
        ),
        (_("Sender"), {"fields": ("sender_type", "sender_remote_id", "sender_name")}),
        (_("Attributes"), {"fields": ("content_attributes_json",)}),
        (_("Remote timestamps"), {"fields": ("created_at", "updated_at")}),
        (
            _("Outbox"),
            {
                "fields": (
                    "local_state",
                    "local_attempts",
                    "local_error",
                    "local_state_changed",
                    "local_report_status",
                    "local_report_error",
                )
            },
        ),
        (_("Local bookkeeping"), {"fields": ("local_created", "local_updated")}),
        (_("Raw JSON"), {"fields": ("raw_json",), "classes": ("collapse",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            super().get_queryset(request).select_related("conversation__inbox", "conversation__contact_inbox__contact")
        )

    @admin.display(description=_("content"), ordering="content")
    def short_content(self, obj: Message) -> str:
        text = Truncator(obj.content).chars(80) if obj.content else f"({obj.content_type} {obj.pk})"
        return f"[{_('private note')}] {text}" if obj.private else text

    @admin.display(description=_("conversation"), ordering="conversation__remote_id")
    def conversation_link(self, obj: Message) -> str:
        return self.change_link(obj.conversation)

    @admin.display(description=_("contact"))
    def contact_link(self, obj: Message) -> str:
        return self.change_link(obj.conversation.contact_inbox.contact)

    @admin.display(description=_("external error"))
    def external_error(self, obj: Message) -> str:
        return obj.external_error or self.get_empty_value_display()

    @admin.display(description=_("content attributes"))
    def content_attributes_json(self, obj: Message) -> SafeString:
        return pretty_json(obj.content_attributes)


@admin.register(Attachment)
class AttachmentAdmin(UnilinkModelAdmin):
    list_display = ("__str__", "remote_id", "file_type", "mime_type", "file_size", "message_link", "local_created")
    list_select_related = ("message",)
    list_filter = ("file_type",)
    search_fields = ("filename", "data_url")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "message",
                    "remote_id",
                    "file_type",
                    "filename",
                    "mime_type",
                    "extension",
                    "file_size",
                    "file",
                    "data_url",
                    "thumb_url",
                )
            },
        ),
        (_("Local bookkeeping"), {"fields": ("local_created", "local_updated")}),
        (_("Raw JSON"), {"fields": ("raw_json",), "classes": ("collapse",)}),
    )

    @admin.display(description=_("message"))
    def message_link(self, obj: Attachment) -> str:
        return self.change_link(obj.message)


# -- Webhook log ----------------------------------------------------------------------------------------


@admin.register(WebhookEvent)
class WebhookEventAdmin(UnilinkModelAdmin):
    actions = [replay_events_action]
    list_display = ("received_at", "event", "inbox_key", "delivery_id", "valid", "state", "attempts", "remote_ip")
    list_filter = ("state", "valid", "event", "inbox_key")
    search_fields = ("=delivery_id", "event", "inbox_key", "invalid_reason")
    search_remote_id = False
    date_hierarchy = "received_at"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "event",
                    "inbox",
                    "inbox_key",
                    "delivery_id",
                    "received_at",
                    "remote_ip",
                    "signed_at",
                    "valid",
                    "invalid_reason_text",
                )
            },
        ),
        (
            _("Processing"),
            {"fields": ("state", "attempts", "processed_at", "last_error_text", "traceback_text")},
        ),
        (_("Request"), {"fields": ("headers_json", "body_json")}),
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The log is this site's own data: staff may prune it (unilink_purge does it in bulk).
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    @admin.display(description=_("invalid reason"))
    def invalid_reason_text(self, obj: WebhookEvent) -> str:
        return scrub(obj.invalid_reason) or self.get_empty_value_display()

    @admin.display(description=_("last error"))
    def last_error_text(self, obj: WebhookEvent) -> SafeString:
        return pretty_text(obj.last_error)

    @admin.display(description=_("traceback"))
    def traceback_text(self, obj: WebhookEvent) -> SafeString:
        return pretty_text(obj.traceback)

    @admin.display(description=_("headers"))
    def headers_json(self, obj: WebhookEvent) -> SafeString:
        # The webhook view already redacts signatures; redact again here in case a row predates it.
        return pretty_json(obj.headers)

    @admin.display(description=_("body"))
    def body_json(self, obj: WebhookEvent) -> SafeString:
        payload = obj.payload
        if payload is None:
            return pretty_text(obj.body)
        return pretty_json(payload)
