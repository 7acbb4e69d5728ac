"""support/receivers.py, tested with signed webhooks posted through the site's real webhook URL."""

from __future__ import annotations

from typing import Any

import pytest

from django_unilink.models import Conversation, Message
from django_unilink.testing.webhooks import build_payload, post_webhook
from support.models import ChatLine


@pytest.mark.django_db
def test_an_agents_reply_becomes_a_chat_line(client: Any) -> None:
    payload = build_payload("message_created", id=501, content="We are on it!", sender__name="Priya")

    response = post_webhook(client, "default", payload)

    assert response.status_code == 200
    line = ChatLine.objects.get()
    assert (line.kind, line.author, line.text) == ("agent", "Priya", "We are on it!")
    assert line.message == Message.objects.get(remote_id=501)


@pytest.mark.django_db
def test_a_private_note_never_becomes_a_chat_line(client: Any) -> None:
    payload = build_payload("message_created", id=502, content="Refund? ask finance", private=True)

    post_webhook(client, "default", payload)

    assert Message.objects.get(remote_id=502).private  # django-unilink mirrored it ...
    assert not ChatLine.objects.exists()  # ... but the visitor's page will never show it


@pytest.mark.django_db
def test_the_same_delivery_twice_makes_one_line(client: Any) -> None:
    payload = build_payload("message_created", id=503, content="Hello again")

    post_webhook(client, "default", payload, delivery_id="same-delivery")
    post_webhook(client, "default", payload, delivery_id="same-delivery")

    assert ChatLine.objects.count() == 1


@pytest.mark.django_db
def test_resolving_the_conversation_is_announced(client: Any) -> None:
    post_webhook(client, "default", build_payload("message_created", id=504, content="Done!"))
    conversation_id = Conversation.objects.get().remote_id

    post_webhook(client, "default", build_payload("conversation_status_changed", id=conversation_id, status="resolved"))

    notice = ChatLine.objects.get(kind="notice")
    assert "resolved" in notice.text
    assert notice.conversation.status == "resolved"


@pytest.mark.django_db
def test_a_message_deleted_by_an_agent_disappears(client: Any) -> None:
    post_webhook(client, "default", build_payload("message_created", id=505, content="Oops, wrong chat"))

    deleted = build_payload(
        "message_updated", id=505, content="This message was deleted", content_attributes={"deleted": True}
    )
    post_webhook(client, "default", deleted)

    assert ChatLine.objects.get().text == "This message was deleted."
