"""Fixtures of the example site's tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def process_webhooks_inline(settings: Any) -> None:
    """No Celery worker runs in tests: process webhook deliveries in the request that receives them.

    (The site's default, "celery", would queue them for a worker that never comes.)
    """
    settings.UNILINK = {**settings.UNILINK, "WEBHOOK_PROCESSING": "inline"}
