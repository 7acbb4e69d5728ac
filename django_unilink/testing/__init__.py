"""Testing kit for projects that use django-unilink (and for its own tests).

- :mod:`django_unilink.testing.factories`: factory-boy factories for every model.
- :mod:`django_unilink.testing.emulator`: a local UniLink server (API + webhooks + agent console).
- :mod:`django_unilink.testing.contract`: OpenAPI contract validation of requests and responses.
- :mod:`django_unilink.testing.webhooks`: build, sign and post webhook deliveries to your site.
- :mod:`django_unilink.testing.contexts`: ``emulator_settings()`` and ``run_tasks_synchronously()``.
- :mod:`django_unilink.testing.pytest_plugin`: the ``unilink_emulator`` and ``unilink_tasks``
  fixtures, registered automatically as a pytest plugin.

This package imports nothing of Django at import time, so the emulator runs without settings.
"""
