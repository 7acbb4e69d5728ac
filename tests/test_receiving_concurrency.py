"""Concurrent deliveries on PostgreSQL: one row and one signal, whatever the interleaving.

Each thread has its own database connection and its own test client, and all of them start
posting at the same instant (a barrier).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.test import Client

from django_unilink.models import Contact, ContactInbox, Conversation, Message, WebhookEvent
from django_unilink.testing.webhooks import encode, load_example, post_webhook, record_signals, sign

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8
SECRET = "test-webhook-secret"


def run_in_threads(post_one) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = post_one(client, index)
            results.append((response.status_code, response.json()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == THREADS
    return results


def test_same_delivery_from_many_threads_gives_one_row_and_one_signal():
    body = encode(load_example("message_created_outgoing"))
    headers = sign(body, SECRET, delivery_id="3f7a2b9c-0000-4000-8000-000000000001")
    with record_signals() as calls:
        results = run_in_threads(lambda client, i: post_webhook(client, "default", body, signed=False, headers=headers))
    assert {status for status, _ in results} == {200}
    assert Counter(body["status"] for _, body in results) == {"processed": 1, "duplicate": THREADS - 1}
    assert WebhookEvent.objects.count() == 1
    assert (Message.objects.count(), Conversation.objects.count(), Contact.objects.count()) == (1, 1, 1)
    assert Counter(c.name for c in calls) == {"webhook_received": 1, "conversation_created": 1, "message_received": 1}


def test_same_message_under_different_delivery_ids_gives_one_row_and_one_signal():
    """Different deliveries (e.g. a replay and the original) racing in the processing itself."""
    payload = load_example("message_created_incoming")
    with record_signals() as calls:
        results = run_in_threads(lambda client, i: post_webhook(client, "default", payload))
    assert Counter(body["status"] for _, body in results) == {"processed": THREADS}
    assert WebhookEvent.objects.count() == THREADS
    assert (Message.objects.count(), Conversation.objects.count(), Contact.objects.count()) == (1, 1, 1)
    assert ContactInbox.objects.count() == 1
    assert Message.objects.get().attachments.count() == 1
    assert Counter(c.name for c in calls) == {
        "webhook_received": THREADS,
        "conversation_created": 1,
        "message_received": 1,
    }


def test_different_messages_of_one_new_conversation_in_parallel():
    """Eight agent replies to a conversation nobody has mirrored yet: one conversation, eight messages."""

    def post_reply(client, index):
        payload = load_example("message_created_outgoing")
        payload["id"] = 20_000 + index
        payload["content"] = f"reply {index}"
        return post_webhook(client, "default", payload)

    with record_signals("conversation_created", "message_received") as calls:
        results = run_in_threads(post_reply)
    assert Counter(body["status"] for _, body in results) == {"processed": THREADS}
    assert Conversation.objects.count() == 1 and Contact.objects.count() == 1
    assert Message.objects.count() == THREADS
    assert Counter(c.name for c in calls) == {"conversation_created": 1, "message_received": THREADS}
