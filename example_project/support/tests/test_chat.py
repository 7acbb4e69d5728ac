"""The chat page and its endpoints: what a visitor writes reaches UniLink (the emulator)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from django_unilink.models import Contact, Conversation, Message
from support.models import ChatLine

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.mark.django_db
def test_a_new_visitor_sees_an_empty_chat_and_nothing_is_created(client: Any) -> None:
    response = client.get(reverse("support:chat"))

    assert response.status_code == 200
    assert b"Say hello" in response.content
    assert client.get(reverse("support:lines")).json() == {"status": None, "lines": []}
    assert not Contact.objects.exists()  # nothing is created on UniLink before the first message


@pytest.mark.django_db
def test_a_visitors_message_reaches_unilink(client: Any, unilink_emulator: Any, unilink_tasks: Any) -> None:
    with unilink_tasks():  # the Celery tasks queued by the view run when the block ends
        response = client.post(reverse("support:send"), {"content": "Where is my parcel?"}, **JSON)

    assert response.status_code == 201
    assert response.json()["line"]["text"] == "Where is my parcel?"
    [remote] = [m for m in unilink_emulator.messages() if m["content"] == "Where is my parcel?"]
    assert remote["message_type"] == 0  # incoming: written by the contact
    message = Message.objects.get()
    assert message.remote_id == remote["id"]
    [contact] = unilink_emulator.contacts()
    assert contact["identifier"].startswith("visitor-")
    assert [line["text"] for line in client.get(reverse("support:lines")).json()["lines"]] == ["Where is my parcel?"]


@pytest.mark.django_db
def test_a_signed_in_user_is_one_contact_with_one_conversation(
    client: Any, django_user_model: Any, unilink_emulator: Any, unilink_tasks: Any
) -> None:
    user = django_user_model.objects.create_user("jane", email="jane@example.com", password="x", first_name="Jane")
    client.force_login(user)

    with unilink_tasks():
        client.post(reverse("support:send"), {"content": "Hello"}, **JSON)
        client.post(reverse("support:send"), {"content": "Anyone there?"}, **JSON)

    contact = Contact.objects.get()
    assert contact.user == user
    assert Conversation.objects.count() == 1
    assert [c["email"] for c in unilink_emulator.contacts()] == ["jane@example.com"]
    assert len(unilink_emulator.conversations()) == 1


@pytest.mark.django_db
def test_an_empty_message_is_refused_with_a_reason(client: Any) -> None:
    response = client.post(reverse("support:send"), {"content": "   "}, **JSON)

    assert response.status_code == 400
    assert response.json() == {"error": "Write a message first.", "field": "content"}
    assert not ChatLine.objects.exists() and not Message.objects.exists()


@pytest.mark.django_db
def test_the_page_works_without_javascript(client: Any, unilink_emulator: Any, unilink_tasks: Any) -> None:
    with unilink_tasks():
        response = client.post(reverse("support:send"), {"content": "Plain form"}, follow=True)

    assert response.redirect_chain == [(reverse("support:chat"), 302)]
    assert b"Plain form" in response.content


@pytest.mark.django_db
def test_new_conversation_starts_over(client: Any, unilink_emulator: Any, unilink_tasks: Any) -> None:
    with unilink_tasks():
        client.post(reverse("support:send"), {"content": "First"}, **JSON)
        client.post(reverse("support:new"))
        client.post(reverse("support:send"), {"content": "Second"}, **JSON)

    assert Conversation.objects.count() == 2
    assert [line["text"] for line in client.get(reverse("support:lines")).json()["lines"]] == ["Second"]
    assert Contact.objects.count() == 1  # still the same visitor


@pytest.mark.django_db
def test_visitors_can_sign_in_and_out(client: Any, django_user_model: Any) -> None:
    django_user_model.objects.create_user("sam", password="pw-for-tests")

    response = client.post(reverse("login"), {"username": "sam", "password": "pw-for-tests"}, follow=True)
    assert b"Signed in as sam" in response.content

    response = client.post(reverse("logout"), follow=True)
    assert b"Chatting as a guest" in response.content


@pytest.mark.django_db
def test_a_signed_in_user_finds_their_conversation_from_another_browser(
    client: Any, django_user_model: Any, unilink_emulator: Any, unilink_tasks: Any
) -> None:
    user = django_user_model.objects.create_user("ana", password="pw-for-tests")
    client.force_login(user)
    with unilink_tasks():
        client.post(reverse("support:send"), {"content": "From my laptop"}, **JSON)

    other_browser = type(client)()
    other_browser.force_login(user)

    assert [line["text"] for line in other_browser.get(reverse("support:lines")).json()["lines"]] == ["From my laptop"]
    anonymous = type(client)()
    assert anonymous.get(reverse("support:lines")).json()["lines"] == []
