"""django-unilink: talk to your customers through a UniLink (Chatwoot API) API-channel inbox."""

__version__ = "0.1.0"
