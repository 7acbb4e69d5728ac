"""The admin: every page loads, links connect the objects, nothing shows a secret, no N+1 queries."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_unilink import admin as unilink_admin
from django_unilink import models
from django_unilink.testing import factories

TOKEN = "tok-admin-SHOULD-NEVER-SHOW-1"
TOKEN_2 = "tok-sales-SHOULD-NEVER-SHOW-2"
SECRET = "whsec-default-NEVER-SHOW-3"
OLD_SECRET = "whsec-old-NEVER-SHOW-4"
SECRET_2 = "whsec-sales-NEVER-SHOW-5"
URL_TOKEN = "urltok-" + "x" * 40
UNILINK = {
    "BASE_URL": "https://unilink.test",
    "ACCOUNT_ID": 1,
    "API_ACCESS_TOKEN": TOKEN,
    "INBOX_ID": 7,
    "WEBHOOK_SECRET": [SECRET, OLD_SECRET],
    "INBOXES": {
        "sales": {
            "INBOX_ID": 9,
            "API_ACCESS_TOKEN": TOKEN_2,
            "WEBHOOK_SECRET": SECRET_2,
            "WEBHOOK_ALLOW_UNSIGNED": True,
            "WEBHOOK_URL_TOKEN": URL_TOKEN,
        }
    },
}
ALL_SECRETS = (TOKEN, TOKEN_2, SECRET, OLD_SECRET, SECRET_2, URL_TOKEN)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("unilink_settings")]


@pytest.fixture
def unilink_settings():
    with override_settings(UNILINK=UNILINK):
        yield


def url(model: type, view: str = "changelist", *args: Any) -> str:
    return reverse(f"admin:django_unilink_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def data() -> dict[str, Any]:
    """One of everything, with secrets planted where the platform or a careless log would put them."""
    inbox = factories.InboxFactory(
        raw={"id": 7, "secret": SECRET, "hmac_token": "hmac-xyz", "webhook_url": "https://x"}
    )
    sales = factories.InboxFactory(key="sales", remote_id=9, name="Sales")
    contact = factories.ContactFactory(name="Ada Lovelace", email="ada@example.com", phone_number="+15550001")
    contact_inbox = factories.ContactInboxFactory(
        contact=contact, inbox=inbox, source_id="src-ada", raw={"pubsub_token": "pubsub-abc"}
    )
    conversation = factories.ConversationFactory(inbox=inbox, contact_inbox=contact_inbox, remote_id=42)
    start = timezone.now() - dt.timedelta(hours=1)
    # Written out of order: the thread must still show them by created_at.
    third = factories.MessageFactory(
        conversation=conversation, content="third reply", created_at=start + dt.timedelta(3)
    )
    first = factories.MessageFactory(
        conversation=conversation, content="first <b>hello</b>", message_type="incoming", created_at=start
    )
    second = factories.MessageFactory(
        conversation=conversation, content="second note", private=True, created_at=start + dt.timedelta(1)
    )
    attachment = factories.AttachmentFactory(message=first, filename="scan.pdf")
    event = factories.WebhookEventFactory(
        inbox=inbox,
        headers={
            "X-Chatwoot-Signature": "sha256=" + "ab" * 32,
            "X-Chatwoot-Delivery": "d-1",
            "Api-Access-Token": TOKEN,
            "Content-Type": "application/json",
        },
        body=json.dumps({"event": "message_created", "inbox": {"id": 7, "secret": SECRET}, "content": "<script>x"}),
        last_error=f"APIError: header api_access_token={TOKEN}",
        traceback=f'Traceback...\n  secrets=("{SECRET}", "{OLD_SECRET}")\nValueError: url token {URL_TOKEN}',
        state=models.WebhookEvent.State.FAILED,
    )
    bad_event = factories.WebhookEventFactory(
        inbox=None,
        inbox_key="gone",
        delivery_id=None,
        body=f"not json {SECRET_2}",
        valid=False,
        invalid_reason="bad signature",
        state=models.WebhookEvent.State.INVALID,
    )
    return {
        "account": inbox.account,
        "inbox": inbox,
        "sales": sales,
        "contact": contact,
        "contact_inbox": contact_inbox,
        "conversation": conversation,
        "messages": [first, second, third],
        "attachment": attachment,
        "events": [event, bad_event],
    }


def registered() -> list[type]:
    return [m for m in admin.site._registry if m._meta.app_label == "django_unilink"]


def all_pages(data: dict[str, Any]) -> list[str]:
    """Every admin page of the app: changelists (plain, each filter, a search) and every change page."""
    pages = [reverse("admin:index"), reverse("admin:app_list", args=["django_unilink"])]
    for model in registered():
        pages.append(url(model))
        pages.append(url(model) + "?q=ada")
        pages.append(url(model) + "?q=42")
        for obj in model._default_manager.all():
            pages.append(url(model, "change", obj.pk))
    inbox, contact = data["inbox"], data["contact"]
    pages += [
        url(models.Inbox) + f"?account__id__exact={data['account'].pk}",
        url(models.Inbox) + "?channel_type=Channel%3A%3AApi",
        url(models.Contact) + f"?contact_inboxes__inbox__id__exact={inbox.pk}",
        url(models.Contact) + "?local_state__exact=remote",
        url(models.ContactInbox) + f"?inbox__id__exact={inbox.pk}&hmac_verified__exact=0",
        url(models.ContactInbox) + f"?contact__id__exact={contact.pk}",
        url(models.Conversation) + f"?inbox__id__exact={inbox.pk}&status__exact=open",
        url(models.Conversation) + "?priority__exact=high&local_state__exact=queued&assignee_type=User",
        url(models.Conversation) + f"?contact={contact.pk}",
        url(models.Conversation) + f"?contact_inbox__id__exact={data['contact_inbox'].pk}",
        url(models.Conversation) + f"?created_at__year={timezone.now().year}",
        url(models.Message) + f"?conversation__inbox__id__exact={inbox.pk}",
        url(models.Message) + "?message_type__exact=incoming&private__exact=1&status__exact=sent",
        url(models.Message) + "?local_state__exact=failed&content_type__exact=text&sender_type=user",
        url(models.Message) + f"?conversation__id__exact={data['conversation'].pk}",
        url(models.Message) + f"?created_at__year={timezone.now().year}",
        url(models.Attachment) + "?file_type__exact=image",
        url(models.WebhookEvent) + "?state__exact=failed&valid__exact=1&event=message_created",
        url(models.WebhookEvent) + "?inbox_key=gone",
        url(models.WebhookEvent) + f"?q={data['events'][0].delivery_id}",
        url(models.WebhookEvent) + f"?received_at__year={timezone.now().year}",
        url(models.WebhookEvent, "delete", data["events"][0].pk),
    ]
    return pages


def test_every_model_is_registered():
    assert set(registered()) == {
        models.Account,
        models.Inbox,
        models.Contact,
        models.ContactInbox,
        models.Conversation,
        models.Message,
        models.Attachment,
        models.WebhookEvent,
    }


def test_every_model_field_is_shown():
    """A field added to a model must be added to its admin page too (maybe pretty-printed as <name>_json)."""
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "django_unilink":
            continue
        shown = set(flatten_fieldsets(model_admin.fieldsets))
        for field in model._meta.concrete_fields:
            if field.primary_key:
                continue
            names = {field.name, f"{field.name}_json", f"{field.name}_text"}
            assert names & shown, f"{model.__name__}.{field.name} is not on its admin page"


def test_every_page_loads_and_shows_no_secret(admin_client, data):
    pages = all_pages(data)
    assert len(pages) > 50
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for secret in ALL_SECRETS:
            assert secret not in html, f"{page} shows a configured secret"
        assert "hmac-xyz" not in html and "pubsub-abc" not in html, page
        assert "sha256=abab" not in html, page


def test_secrets_are_redacted_visibly(admin_client, data):
    event = data["events"][0]
    html = admin_client.get(url(models.WebhookEvent, "change", event.pk)).content.decode()
    assert html.count(unilink_admin.REDACTED) >= 5  # signature, token header, body secret, error, traceback
    assert "X-Chatwoot-Delivery" in html and "d-1" in html  # harmless headers stay readable
    assert "&lt;script&gt;x" in html and "<script>x" not in html  # escaped
    inbox_html = admin_client.get(url(models.Inbox, "change", data["inbox"].pk)).content.decode()
    assert "&quot;secret&quot;: &quot;[redacted]&quot;" in inbox_html
    assert "&quot;webhook_url&quot;: &quot;https://x&quot;" in inbox_html  # pretty, readable JSON


def test_filters_and_search_select_the_right_rows(admin_client, data):
    other = factories.ConversationFactory(inbox=data["sales"], remote_id=77, status="resolved")
    listing = admin_client.get(url(models.Conversation) + f"?contact={data['contact'].pk}")
    assert list(listing.context["cl"].result_list) == [data["conversation"]]
    assert "Ada Lovelace" in listing.content.decode()  # the active contact filter names its contact
    resolved = admin_client.get(url(models.Conversation) + "?status__exact=resolved")
    assert list(resolved.context["cl"].result_list) == [other]
    by_id = admin_client.get(url(models.Conversation) + "?q=77")
    assert list(by_id.context["cl"].result_list) == [other]
    messages = admin_client.get(url(models.Message) + "?q=second")
    assert list(messages.context["cl"].result_list) == [data["messages"][1]]
    contacts = admin_client.get(url(models.Contact) + "?q=%2B15550001")
    assert list(contacts.context["cl"].result_list) == [data["contact"]]
    cis = admin_client.get(url(models.ContactInbox) + "?q=src-ada")
    assert list(cis.context["cl"].result_list) == [data["contact_inbox"]]
    events = admin_client.get(url(models.WebhookEvent) + "?valid__exact=0")
    assert list(events.context["cl"].result_list) == [data["events"][1]]


def test_message_thread_is_in_order(admin_client, data):
    html = admin_client.get(url(models.Conversation, "change", data["conversation"].pk)).content.decode()
    positions = [html.index(text) for text in ("first &lt;b&gt;hello&lt;/b&gt;", "second note", "third reply")]
    assert positions == sorted(positions)
    assert "scan.pdf" in html  # attachments listed in the thread


def test_links_connect_contact_sessions_conversations_messages(admin_client, data):
    contact, ci, conversation = data["contact"], data["contact_inbox"], data["conversation"]
    first = data["messages"][0]
    contact_html = admin_client.get(url(models.Contact, "change", contact.pk)).content.decode()
    assert url(models.ContactInbox, "change", ci.pk) in contact_html
    assert f"{url(models.Conversation)}?contact={contact.pk}" in contact_html
    ci_html = admin_client.get(url(models.ContactInbox, "change", ci.pk)).content.decode()
    assert url(models.Contact, "change", contact.pk) in ci_html
    assert url(models.Conversation, "change", conversation.pk) in ci_html
    conv_html = admin_client.get(url(models.Conversation, "change", conversation.pk)).content.decode()
    assert url(models.Contact, "change", contact.pk) in conv_html
    assert url(models.ContactInbox, "change", ci.pk) in conv_html
    assert url(models.Message, "change", first.pk) in conv_html
    msg_html = admin_client.get(url(models.Message, "change", first.pk)).content.decode()
    assert url(models.Conversation, "change", conversation.pk) in msg_html
    assert url(models.Contact, "change", contact.pk) in msg_html
    assert url(models.Attachment, "change", data["attachment"].pk) in msg_html
    list_html = admin_client.get(url(models.Message)).content.decode()
    assert url(models.Conversation, "change", conversation.pk) in list_html
    assert str(first.remote_id) in list_html  # remote ids visible


def test_mirrors_are_view_only_and_cannot_be_added(admin_client, data):
    for model in registered():
        assert admin_client.get(url(model, "add")).status_code == 403, model
    conversation = data["conversation"]
    page = admin_client.get(url(models.Conversation, "change", conversation.pk))
    assert 'name="_save"' not in page.content.decode()
    response = admin_client.post(url(models.Conversation, "change", conversation.pk), {"status": "resolved"})
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert admin_client.get(url(models.Message, "delete", data["messages"][0].pk)).status_code == 403
    # The webhook log is this site's own data: it may be pruned.
    event = data["events"][1]
    assert admin_client.post(url(models.WebhookEvent, "delete", event.pk), {"post": "yes"}).status_code == 302
    assert not models.WebhookEvent.objects.filter(pk=event.pk).exists()


def test_replay_action_needs_the_change_permission(client, data, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookevent"))
    client.force_login(viewer)
    page = client.get(url(models.WebhookEvent))
    assert page.status_code == 200
    assert "replay_events_action" not in page.content.decode()
    viewer.user_permissions.add(Permission.objects.get(codename="change_webhookevent"))
    viewer = django_user_model.objects.get(pk=viewer.pk)  # drop the cached permissions
    client.force_login(viewer)
    assert "replay_events_action" in client.get(url(models.WebhookEvent)).content.decode()


def test_contact_user_link_is_the_only_editable_field(admin_client, data, admin_user):
    contact = data["contact"]
    page = admin_client.get(url(models.Contact, "change", contact.pk)).content.decode()
    assert 'name="user_object_id"' in page and 'name="user_content_type"' in page
    assert 'name="email"' not in page and 'name="name"' not in page
    user_type = ContentType.objects.get_for_model(admin_user)
    response = admin_client.post(
        url(models.Contact, "change", contact.pk),
        {
            "user_content_type": user_type.pk,
            "user_object_id": str(admin_user.pk),
            "email": "changed@example.com",  # read-only: ignored
            "contact_inboxes-TOTAL_FORMS": "1",
            "contact_inboxes-INITIAL_FORMS": "1",
            "contact_inboxes-MIN_NUM_FORMS": "0",
            "contact_inboxes-MAX_NUM_FORMS": "0",
            "contact_inboxes-0-id": str(data["contact_inbox"].pk),
            "contact_inboxes-0-contact": str(contact.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    contact.refresh_from_db()
    assert contact.user == admin_user
    assert contact.email == "ada@example.com"


def _count_queries(client: Any, page: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(page)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _more_rows(data: dict[str, Any], n: int) -> None:
    for i in range(n):
        contact = factories.ContactFactory()
        ci = factories.ContactInboxFactory(contact=contact, inbox=data["sales"] if i % 2 else data["inbox"])
        conversation = factories.ConversationFactory(inbox=ci.inbox, contact_inbox=ci)
        message = factories.MessageFactory(conversation=conversation)
        factories.AttachmentFactory(message=message)
        factories.MessageFactory(conversation=data["conversation"])
        factories.WebhookEventFactory(inbox=ci.inbox)
        factories.InboxFactory(key=f"extra-{i}", remote_id=100 + i, account=factories.AccountFactory(remote_id=50 + i))


def test_query_counts_do_not_grow_with_rows(admin_client, data):
    pages = [url(model) for model in registered()]
    pages += [
        url(models.Conversation, "change", data["conversation"].pk),
        url(models.Contact, "change", data["contact"].pk),
        url(models.ContactInbox, "change", data["contact_inbox"].pk),
    ]
    for page in pages:  # warm per-process caches (content types, sessions) so only per-row queries differ
        admin_client.get(page)
    before = {page: _count_queries(admin_client, page) for page in pages}
    _more_rows(data, 6)
    after = {page: _count_queries(admin_client, page) for page in pages}
    assert after == before


def test_pretty_json_helpers_redact_at_any_depth():
    value = {
        "a": [{"Secret": "s1"}, {"nested": {"hmac_token": "h"}}],
        "X-Signature": "sig",
        "ok": "fine",
        "token": None,
    }
    assert unilink_admin.redact(value) == {
        "a": [{"Secret": "[redacted]"}, {"nested": {"hmac_token": "[redacted]"}}],
        "X-Signature": "[redacted]",
        "ok": "fine",
        "token": None,
    }
    html = unilink_admin.pretty_json({"note": f"pasted {SECRET_2} here", "html": "<i>"})
    assert SECRET_2 not in html and "&lt;i&gt;" in html and html.startswith('<pre class="unilink-json">')


def test_scrub_reads_settings_at_call_time_and_tolerates_bad_settings():
    with override_settings(UNILINK={"API_ACCESS_TOKEN": "first-token-1"}):
        assert unilink_admin.scrub("a first-token-1 b") == "a [redacted] b"
    with override_settings(UNILINK={"API_ACCESS_TOKEN": "second-token-2"}):
        assert unilink_admin.scrub("a first-token-1 b") == "a first-token-1 b"
    with override_settings(UNILINK=["not", "a", "dict"]):
        assert unilink_admin.scrub("text") == "text"
