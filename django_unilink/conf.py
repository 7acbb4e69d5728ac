"""The ``UNILINK`` setting, read at call time.

Nothing here is cached: every call reads ``django.conf.settings.UNILINK`` again, so
``override_settings`` and settings changed at run time take effect at once.

Two shapes are accepted, and may be combined::

    UNILINK = {
        # Flat keys define the inbox named "default".
        "BASE_URL": "https://support.example.com",
        "ACCOUNT_ID": 1,
        "API_ACCESS_TOKEN": "...",
        "INBOX_ID": 7,
        "WEBHOOK_SECRET": "...",          # or a list, newest first, while rotating
        # More inboxes; each may live in another account or installation.
        "INBOXES": {
            "sales": {"INBOX_ID": 9, "WEBHOOK_SECRET": "..."},
        },
    }

An entry of ``INBOXES`` inherits ``BASE_URL``, ``ACCOUNT_ID`` and ``API_ACCESS_TOKEN`` from the
flat keys when it does not set them (the common case: several inboxes of one account). It
never inherits ``INBOX_ID`` or the webhook secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from .exceptions import ConfigurationError, UnknownInboxError

DEFAULT_INBOX = "default"

#: Keys that describe one inbox (flat, or inside an ``INBOXES`` entry).
INBOX_KEYS = (
    "BASE_URL",
    "ACCOUNT_ID",
    "API_ACCESS_TOKEN",
    "INBOX_ID",
    "WEBHOOK_SECRET",
    "WEBHOOK_ALLOW_UNSIGNED",
    "WEBHOOK_URL_TOKEN",
)
#: Keys an ``INBOXES`` entry takes from the flat keys when it does not set them.
INHERITED_KEYS = ("BASE_URL", "ACCOUNT_ID", "API_ACCESS_TOKEN")

#: Global options and their defaults. Documented in docs/configuration.md.
DEFAULTS: dict[str, Any] = {
    # HTTP client
    "CONNECT_TIMEOUT": 5.0,  # seconds to open a connection to the platform
    "READ_TIMEOUT": 30.0,  # seconds to wait for an answer
    "USER_AGENT": None,  # None: "django-unilink/<version>"
    # Sending (Celery)
    "MAX_RETRIES": 10,  # attempts for 429/5xx/transport errors before a message is failed
    "RETRY_BACKOFF": 2,  # first backoff in seconds; doubles each attempt (with jitter)
    "RETRY_BACKOFF_MAX": 600,  # backoff cap in seconds
    "STUCK_AFTER": 600,  # seconds after which a queued/sending row counts as stuck for the sweep
    "CELERY_QUEUE": None,  # queue name for django-unilink tasks (None: Celery's default)
    # Receiving (webhooks)
    "WEBHOOK_TOLERANCE": 300,  # seconds a signed timestamp may differ from now
    "WEBHOOK_MAX_BODY": 1024 * 1024,  # bytes; bigger deliveries get 413
    "WEBHOOK_PROCESSING": "auto",  # "auto" | "celery" | "inline"
    "WEBHOOK_LOG_DAYS": 30,  # unilink_purge default: keep this many days of WebhookEvent rows
    "TRUSTED_PROXY_COUNT": 0,  # X-Forwarded-For hops to trust for the remote IP in the log
}


def _raw() -> Mapping[str, Any]:
    value = getattr(settings, "UNILINK", None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"settings.UNILINK must be a dict, not {type(value).__name__}. See docs/configuration.md for its keys."
        )
    return value


def get_setting(name: str) -> Any:
    """Return the global option ``name`` from ``UNILINK``, or its documented default."""
    if name not in DEFAULTS:
        raise KeyError(f"{name!r} is not a django-unilink option")
    return _raw().get(name, DEFAULTS[name])


def _redact(value: str | None) -> str:
    return "''" if not value else "'***'"


@dataclass(frozen=True)
class InboxConfig:
    """One configured inbox, as read from settings.

    Values are taken as written; :func:`validate_inbox` (and the system checks) say what is wrong.
    The token and secrets never appear in ``repr()``.
    """

    key: str
    base_url: str
    account_id: Any
    api_access_token: str = field(repr=False)
    inbox_id: Any
    webhook_secrets: tuple[str, ...] = field(repr=False)
    allow_unsigned: bool = False
    webhook_url_token: str = field(default="", repr=False)
    #: Where each value came from, for messages: ``UNILINK['INBOXES']['sales']['INBOX_ID']``.
    source: str = "UNILINK"

    def __repr__(self) -> str:
        return (
            f"InboxConfig(key={self.key!r}, base_url={self.base_url!r}, account_id={self.account_id!r}, "
            f"inbox_id={self.inbox_id!r}, api_access_token={_redact(self.api_access_token)}, "
            f"webhook_secrets={len(self.webhook_secrets)} configured)"
        )

    def setting_name(self, key: str) -> str:
        """The exact place to fix ``key`` for this inbox, e.g. ``UNILINK['INBOX_ID']``."""
        if self.source == "UNILINK":
            return f"UNILINK[{key!r}]"
        return f"{self.source}[{key!r}]"

    @property
    def api_base(self) -> str:
        """The base URL without a trailing slash."""
        return str(self.base_url or "").rstrip("/")


def _secrets(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v)
    return (str(value),)


def _build(key: str, values: Mapping[str, Any], source: str) -> InboxConfig:
    return InboxConfig(
        key=key,
        base_url=values.get("BASE_URL") or "",
        account_id=values.get("ACCOUNT_ID"),
        api_access_token=values.get("API_ACCESS_TOKEN") or "",
        inbox_id=values.get("INBOX_ID"),
        webhook_secrets=_secrets(values.get("WEBHOOK_SECRET")),
        allow_unsigned=bool(values.get("WEBHOOK_ALLOW_UNSIGNED", False)),
        webhook_url_token=str(values.get("WEBHOOK_URL_TOKEN") or ""),
        source=source,
    )


def inbox_configs() -> dict[str, InboxConfig]:
    """All configured inboxes by key, in settings order ("default" first when the flat keys set it)."""
    raw = _raw()
    result: dict[str, InboxConfig] = {}
    if raw.get("INBOX_ID") is not None:
        result[DEFAULT_INBOX] = _build(DEFAULT_INBOX, raw, "UNILINK")
    inboxes = raw.get("INBOXES") or {}
    if not isinstance(inboxes, Mapping):
        raise ConfigurationError(
            f"UNILINK['INBOXES'] must be a dict of inbox key -> settings, not {type(inboxes).__name__}."
        )
    for key, entry in inboxes.items():
        if not isinstance(entry, Mapping):
            raise ConfigurationError(
                f"UNILINK['INBOXES'][{key!r}] must be a dict with INBOX_ID, WEBHOOK_SECRET, ..., "
                f"not {type(entry).__name__}."
            )
        if key == DEFAULT_INBOX and DEFAULT_INBOX in result:
            raise ConfigurationError(
                "The inbox 'default' is defined twice: by the flat UNILINK['INBOX_ID'] and by "
                "UNILINK['INBOXES']['default']. Keep one of them."
            )
        merged = {k: raw[k] for k in INHERITED_KEYS if k in raw}
        merged.update(entry)
        result[str(key)] = _build(str(key), merged, f"UNILINK['INBOXES'][{key!r}]")
    return result


def get_inbox_config(key: str = DEFAULT_INBOX) -> InboxConfig:
    """The configuration of inbox ``key``; raises :class:`UnknownInboxError` naming the known keys."""
    configs = inbox_configs()
    try:
        return configs[key]
    except KeyError:
        known = ", ".join(repr(k) for k in configs) or "none"
        raise UnknownInboxError(
            f"No UniLink inbox {key!r} is configured (configured: {known}). Define it with the flat "
            "UNILINK keys (for 'default') or in UNILINK['INBOXES']."
        ) from None


def validate_inbox(config: InboxConfig) -> list[tuple[str, str, str]]:
    """Problems of one inbox config as ``(check id, message, hint)``; empty when usable.

    Shared by the system checks and by code that must refuse to run on a broken config.
    """
    problems: list[tuple[str, str, str]] = []
    parts = urlsplit(str(config.base_url or ""))
    if not config.base_url:
        problems.append(
            (
                "unilink.E001",
                f"Inbox {config.key!r} has no BASE_URL.",
                f"Set {config.setting_name('BASE_URL')} to your UniLink address, e.g. 'https://support.example.com'.",
            )
        )
    elif parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(
            (
                "unilink.E002",
                f"Inbox {config.key!r} has an invalid BASE_URL {config.base_url!r}.",
                f"Set {config.setting_name('BASE_URL')} to an absolute http(s) URL such as "
                "'https://support.example.com' (no /api/v1 path).",
            )
        )
    elif parts.path.rstrip("/").endswith("/api/v1") or "/api/" in parts.path:
        problems.append(
            (
                "unilink.E002",
                f"Inbox {config.key!r} has a BASE_URL with an API path: {config.base_url!r}.",
                f"Set {config.setting_name('BASE_URL')} to the site root only; django-unilink adds /api/v1/... itself.",
            )
        )
    if not config.api_access_token:
        problems.append(
            (
                "unilink.E003",
                f"Inbox {config.key!r} has no API_ACCESS_TOKEN.",
                f"Set {config.setting_name('API_ACCESS_TOKEN')} to the access token of a UniLink user "
                "(Profile settings > Access token); an administrator's works best.",
            )
        )
    elif isinstance(config.api_access_token, str) and _has_whitespace_or_control(config.api_access_token):
        problems.append(
            (
                "unilink.E011",
                f"Inbox {config.key!r} has an API_ACCESS_TOKEN containing whitespace or control characters; "
                "UniLink would refuse it (401) or the HTTP library would refuse to send it.",
                f"Set {config.setting_name('API_ACCESS_TOKEN')} to the token exactly as UniLink shows it "
                "(Profile settings > Access token), without spaces or a trailing newline (e.g. from a file).",
            )
        )
    for key in ("ACCOUNT_ID", "INBOX_ID"):
        value = config.account_id if key == "ACCOUNT_ID" else config.inbox_id
        if not _is_positive_int(value):
            problems.append(
                (
                    "unilink.E004",
                    f"Inbox {config.key!r} has {key} = {value!r}, which is not a positive integer.",
                    f"Set {config.setting_name(key)} to the number in your UniLink URL "
                    + (
                        "(/app/accounts/<ACCOUNT_ID>/...)."
                        if key == "ACCOUNT_ID"
                        else "(/app/accounts/1/settings/inboxes/<INBOX_ID>)."
                    ),
                )
            )
    return problems


def _has_whitespace_or_control(value: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() for ch in value)


def _is_positive_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    if isinstance(value, str) and value.strip().isdigit():
        return int(value) > 0
    return False


def as_int(value: Any) -> int:
    """An id from settings as an int ("7" is accepted, as environment variables are strings)."""
    return int(value)
