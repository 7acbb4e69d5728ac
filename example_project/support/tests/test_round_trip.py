"""The whole loop with no network: page -> UniLink (the emulator) -> agent -> webhook -> page.

With pytest-django's ``live_server``, the ``unilink_emulator`` fixture posts the inbox's webhooks
to the live server, signed with the secret it put in ``settings.UNILINK``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.mark.django_db(transaction=True)
def test_agent_replies_reach_the_visitor_and_private_notes_do_not(
    client: Any, live_server: Any, unilink_emulator: Any, unilink_tasks: Any
) -> None:
    with unilink_tasks():
        client.post(reverse("support:send"), {"content": "My parcel is late"}, **JSON)
    [conversation] = unilink_emulator.conversations()

    unilink_emulator.agent_reply(conversation["id"], "It left the warehouse this morning.")
    unilink_emulator.agent_reply(conversation["id"], "customer asked twice already", private=True)
    unilink_emulator.set_status(conversation["id"], "resolved")
    unilink_emulator.wait_for_webhooks()  # every delivery was answered by the live server

    page = client.get(reverse("support:lines")).json()
    assert [(line["kind"], line["text"]) for line in page["lines"]] == [
        ("visitor", "My parcel is late"),
        ("agent", "It left the warehouse this morning."),
        ("notice", "This conversation was marked as resolved. Write again if you need more help."),
    ]
    assert page["status"] == "resolved"
    assert all(d["status"] == 200 for d in unilink_emulator.webhook_deliveries())
