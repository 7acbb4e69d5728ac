"""Testing kit for projects that use django-unilink (and for its own tests).

- :mod:`django_unilink.testing.factories`: factory-boy factories for every model.
- :mod:`django_unilink.testing.emulator`: a local UniLink server (API + webhooks + agent console).
- :mod:`django_unilink.testing.contract`: OpenAPI contract validation of requests and responses.
"""
