"""Shared fixtures. Fixtures of the testing kit live in django_unilink.testing."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgres`` run only on PostgreSQL (UNILINK_TEST_DB=postgres)."""
    import os

    if os.environ.get("UNILINK_TEST_DB", "sqlite") == "postgres":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: run with UNILINK_TEST_DB=postgres (make test does)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def inbox(db):
    """The Inbox row of the settings-only inbox "default"."""
    from django_unilink.models import Inbox

    return Inbox.objects.for_key("default")
