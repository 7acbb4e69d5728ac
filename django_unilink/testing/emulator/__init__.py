"""A local stand-in for a UniLink (Chatwoot) server, like stripe-mock for Stripe.

It serves the Application API subset django-unilink uses (with the platform's wrappers, enum
encodings, paging and error bodies), sends signed webhooks to each inbox's ``webhook_url`` from a
background worker, has an agent console at ``/``, and can inject faults for tests. Only the
standard library and ``requests`` are used; section numbers in comments refer to
``unilink-api.md``. Run it from the command line with ``python -m django_unilink.testing.emulator``.
See docs/emulator.md.
"""

from .core import Emulator
from .server import LoggedRequest
from .webhooks import sign

__all__ = ["Emulator", "LoggedRequest", "sign"]
