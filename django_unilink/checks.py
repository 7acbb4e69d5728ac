"""Django system checks for the ``UNILINK`` setting (ids ``unilink.E0xx`` / ``unilink.W0xx``).

Every check reads settings at call time through :mod:`django_unilink.conf`; a malformed
``UNILINK`` becomes an Error, never an exception. Each message's hint names the exact key to fix.
docs/checks.md lists every id.

What cannot be checked offline: whether a token belongs to a user or to an agent bot (both are
24-character secure tokens) and whether it works at all. ``manage.py unilink_check`` asks the live
API for that.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Real
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.validators import slug_re
from django.db import DatabaseError, router, transaction

from . import conf
from .exceptions import ConfigurationError

APP_LABEL = "django_unilink"
#: Shortest accepted ``WEBHOOK_URL_TOKEN``: 32 characters of ``secrets.token_urlsafe`` are ~190 bits.
MIN_URL_TOKEN_LENGTH = 32
#: ``Inbox.key`` is a SlugField of this length; the key also appears in the webhook URL.
MAX_INBOX_KEY_LENGTH = 100
WEBHOOK_PROCESSING_MODES = ("auto", "celery", "inline")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _ours(app_configs: Sequence[AppConfig] | None) -> bool:
    """Whether this run covers django-unilink (``manage.py check otherapp`` skips us)."""
    return app_configs is None or any(app.name == APP_LABEL for app in app_configs)


def _raw_setting() -> Any:
    return getattr(settings, "UNILINK", None)


def _load() -> tuple[dict[str, conf.InboxConfig] | None, list[CheckMessage]]:
    """The configured inboxes, or ``None`` and the Error that says why they cannot be read."""
    try:
        return conf.inbox_configs(), []
    except ConfigurationError as exc:
        if not isinstance(_raw_setting(), Mapping):
            return None, [
                Error(
                    str(exc),
                    hint="Set settings.UNILINK to a dict such as {'BASE_URL': ..., 'ACCOUNT_ID': ..., "
                    "'API_ACCESS_TOKEN': ..., 'INBOX_ID': ..., 'WEBHOOK_SECRET': ...}.",
                    id="unilink.E005",
                )
            ]
        return None, [
            Error(
                str(exc),
                hint="UNILINK['INBOXES'] maps an inbox key to a dict of that inbox's keys, e.g. "
                "{'sales': {'INBOX_ID': 9, 'WEBHOOK_SECRET': '...'}}; the flat keys already define 'default'.",
                id="unilink.E006",
            )
        ]


# -- Value rules for the global options -------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _positive_number(value: Any) -> bool:
    return _is_number(value) and value > 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _optional_name(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(value.strip()) and not _has_control(value))


def _processing_mode(value: Any) -> bool:
    return value in WEBHOOK_PROCESSING_MODES


#: Option -> (test, what is expected). Options added to conf.DEFAULTS without a rule here are not checked.
OPTION_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "CONNECT_TIMEOUT": (_positive_number, "a positive number of seconds, e.g. 5"),
    "READ_TIMEOUT": (_positive_number, "a positive number of seconds, e.g. 30"),
    "USER_AGENT": (_optional_name, "None or a non-empty string on one line"),
    "MAX_RETRIES": (_non_negative_int, "an integer >= 0 (0 fails a message at its first error)"),
    "RETRY_BACKOFF": (_positive_number, "a positive number of seconds, e.g. 2"),
    "RETRY_BACKOFF_MAX": (_positive_number, "a positive number of seconds, e.g. 600"),
    "STUCK_AFTER": (_positive_number, "a positive number of seconds, e.g. 600"),
    "CELERY_QUEUE": (_optional_name, "None (Celery's default queue) or a queue name"),
    "WEBHOOK_TOLERANCE": (_positive_number, "a positive number of seconds, e.g. 300"),
    "WEBHOOK_MAX_BODY": (_positive_int, "a positive integer number of bytes, e.g. 1048576"),
    "WEBHOOK_PROCESSING": (_processing_mode, "one of " + ", ".join(repr(m) for m in WEBHOOK_PROCESSING_MODES)),
    "WEBHOOK_LOG_DAYS": (_positive_int, "a positive integer number of days, e.g. 30"),
    "TRUSTED_PROXY_COUNT": (_non_negative_int, "an integer >= 0 (0: trust no X-Forwarded-For hop)"),
}


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _suggest(key: str, known: Iterable[str]) -> str:
    known = list(known)
    if key.upper() in known:
        return f"Did you mean {key.upper()!r}? Keys are upper case."
    match = difflib.get_close_matches(key.upper(), known, n=1, cutoff=0.6)
    return f"Did you mean {match[0]!r}?" if match else "Known keys: " + ", ".join(sorted(known)) + "."


# -- Checks on the shape of UNILINK -----------------------------------------------------------


@register("unilink")
def check_settings_structure(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """UNILINK can be read, has at least one inbox, no unknown keys, and options of the right type."""
    if not _ours(app_configs):
        return []
    configs, errors = _load()
    if configs is None:
        return errors
    raw: Mapping[str, Any] = _raw_setting() or {}
    messages: list[CheckMessage] = []
    if not configs:
        messages.append(
            CheckWarning(
                "No UniLink inbox is configured: django-unilink can neither send nor receive.",
                hint="Set UNILINK['INBOX_ID'] (with BASE_URL, ACCOUNT_ID, API_ACCESS_TOKEN and WEBHOOK_SECRET) "
                "for the 'default' inbox, or add entries to UNILINK['INBOXES'].",
                id="unilink.W003",
            )
        )
    messages += _unknown_keys(raw)
    messages += _unused_flat_keys(raw)
    for name, (test, expected) in OPTION_RULES.items():
        if name in raw and not test(raw[name]):
            messages.append(
                Error(
                    f"UNILINK[{name!r}] is {raw[name]!r}, which is not {expected}.",
                    hint=f"Set UNILINK[{name!r}] to {expected}, or remove it to use the default "
                    f"({conf.DEFAULTS[name]!r}).",
                    id="unilink.E010",
                )
            )
    return messages


def _unknown_keys(raw: Mapping[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    top_known = [*conf.INBOX_KEYS, *conf.DEFAULTS, "INBOXES"]
    for key in raw:
        if key not in top_known:
            messages.append(
                CheckWarning(
                    f"UNILINK has an unknown key {key!r}; it is ignored.",
                    hint=_suggest(str(key), top_known) + " See docs/configuration.md.",
                    id="unilink.W004",
                )
            )
    inboxes = raw.get("INBOXES") or {}
    for inbox_key, entry in inboxes.items():
        for key in entry:
            if key in conf.INBOX_KEYS:
                continue
            place = f"UNILINK['INBOXES'][{inbox_key!r}]"
            if key in conf.DEFAULTS or key == "INBOXES":
                hint = f"{key!r} is a global option: set UNILINK[{key!r}] at the top level; it cannot differ per inbox."
            else:
                hint = _suggest(str(key), conf.INBOX_KEYS) + " See docs/configuration.md."
            messages.append(
                CheckWarning(f"{place} has an unknown key {key!r}; it is ignored.", hint=hint, id="unilink.W004")
            )
    return messages


def _unused_flat_keys(raw: Mapping[str, Any]) -> list[CheckMessage]:
    """Flat inbox-only keys without a flat INBOX_ID define no inbox and are not inherited."""
    if raw.get("INBOX_ID") is not None:
        return []
    inbox_only = [k for k in conf.INBOX_KEYS if k not in (*conf.INHERITED_KEYS, "INBOX_ID")]
    unused = [k for k in inbox_only if raw.get(k) not in (None, "", False, [], ())]
    return [
        CheckWarning(
            f"UNILINK[{key!r}] is set but UNILINK['INBOX_ID'] is not, so no inbox uses it: entries of "
            "UNILINK['INBOXES'] never inherit it.",
            hint=f"Move it into each UNILINK['INBOXES'][<key>][{key!r}], or set UNILINK['INBOX_ID'] "
            "if it belongs to the 'default' inbox.",
            id="unilink.W005",
        )
        for key in unused
    ]


# -- Checks on each inbox -----------------------------------------------------------------------


@register("unilink")
def check_inboxes(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Each configured inbox is usable, authenticated, and distinct from the others."""
    if not _ours(app_configs):
        return []
    configs, _errors = _load()
    if not configs:  # None: check_settings_structure reports why
        return []
    messages: list[CheckMessage] = []
    for config in configs.values():
        messages += [Error(msg, hint=hint, id=check_id) for check_id, msg, hint in conf.validate_inbox(config)]
        messages += _check_key(config)
        messages += _check_types(config)
        messages += _check_token(config)
        messages += _check_webhook_auth(config)
    messages += _check_duplicates(configs)
    return messages


def _entry(config: conf.InboxConfig) -> Mapping[str, Any]:
    """The settings dict an inbox was read from (its INBOXES entry, or UNILINK itself)."""
    raw: Mapping[str, Any] = _raw_setting() or {}
    if config.source == "UNILINK":
        return raw
    for key, entry in (raw.get("INBOXES") or {}).items():
        if str(key) == config.key:
            return entry
    return {}


def _check_key(config: conf.InboxConfig) -> list[CheckMessage]:
    if slug_re.match(config.key) and len(config.key) <= MAX_INBOX_KEY_LENGTH:
        return []
    return [
        Error(
            f"The inbox key {config.key!r} is not a slug of at most {MAX_INBOX_KEY_LENGTH} characters; "
            "it appears in the webhook URL and in the Inbox table.",
            hint=f"Rename {config.source} to use only letters, digits, '-' and '_', e.g. "
            f"{re.sub(r'[^-a-zA-Z0-9_]+', '-', config.key).strip('-')[:MAX_INBOX_KEY_LENGTH] or 'support'!r}.",
            id="unilink.E007",
        )
    ]


def _check_types(config: conf.InboxConfig) -> list[CheckMessage]:
    entry = _entry(config)
    messages: list[CheckMessage] = []
    unsigned = entry.get("WEBHOOK_ALLOW_UNSIGNED", False)
    if not isinstance(unsigned, bool):
        # conf reads it with bool(): the string "false" would silently mean True.
        messages.append(
            Error(
                f"Inbox {config.key!r} has WEBHOOK_ALLOW_UNSIGNED = {unsigned!r}, which is not True or False.",
                hint=f"Set {config.setting_name('WEBHOOK_ALLOW_UNSIGNED')} to True or False (a Python bool; "
                "convert environment variables yourself).",
                id="unilink.E010",
            )
        )
    secret = entry.get("WEBHOOK_SECRET")
    if secret is not None and not (
        isinstance(secret, str) or (isinstance(secret, (list, tuple)) and all(isinstance(s, str) for s in secret))
    ):
        messages.append(
            Error(
                f"Inbox {config.key!r} has a WEBHOOK_SECRET of type {type(secret).__name__}.",
                hint=f"Set {config.setting_name('WEBHOOK_SECRET')} to a string, or a list of strings "
                "(newest first) while rotating.",
                id="unilink.E010",
            )
        )
    for key in ("API_ACCESS_TOKEN", "WEBHOOK_URL_TOKEN"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            messages.append(
                Error(
                    f"Inbox {config.key!r} has a {key} of type {type(value).__name__}.",
                    hint=f"Set {config.setting_name(key)} to a string.",
                    id="unilink.E010",
                )
            )
    return messages


def _check_token(config: conf.InboxConfig) -> list[CheckMessage]:
    token = config.api_access_token
    if not isinstance(token, str) or not token:
        return []  # E003 (missing) or E010 (wrong type) already says so
    messages: list[CheckMessage] = []
    # Whitespace or control characters in the token: unilink.E011, from conf.validate_inbox.
    if token in config.webhook_secrets or (config.webhook_url_token and token == config.webhook_url_token):
        messages.append(
            Error(
                f"Inbox {config.key!r} uses the same value as API_ACCESS_TOKEN and as a webhook secret or URL token.",
                hint=f"{config.setting_name('API_ACCESS_TOKEN')} must be a user's access token (Profile settings > "
                f"Access token); {config.setting_name('WEBHOOK_SECRET')} is the inbox's own signing secret "
                "(the `secret` of the inbox JSON). They are never equal.",
                id="unilink.E012",
            )
        )
    return messages


def _check_webhook_auth(config: conf.InboxConfig) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if config.allow_unsigned:
        messages.append(
            CheckWarning(
                f"Inbox {config.key!r} accepts unsigned webhook deliveries: anyone who learns its webhook URL "
                "can forge messages and status changes.",
                hint=f"Only for platforms older than Chatwoot 4.13, which do not sign. Once yours signs, set "
                f"{config.setting_name('WEBHOOK_SECRET')} and remove {config.setting_name('WEBHOOK_ALLOW_UNSIGNED')}.",
                id="unilink.W002",
            )
        )
        if len(config.webhook_url_token) < MIN_URL_TOKEN_LENGTH:
            what = (
                "has a WEBHOOK_URL_TOKEN that is too short" if config.webhook_url_token else "has no WEBHOOK_URL_TOKEN"
            )
            messages.append(
                Error(
                    f"Inbox {config.key!r} accepts unsigned deliveries but {what}: its webhook URL would be "
                    "the only protection, and it is guessable.",
                    hint=f"Set {config.setting_name('WEBHOOK_URL_TOKEN')} to at least {MIN_URL_TOKEN_LENGTH} random "
                    'characters, e.g. the output of: python -c "import secrets; print(secrets.token_urlsafe(32))".',
                    id="unilink.E009",
                )
            )
    elif not config.webhook_secrets:
        messages.append(
            CheckWarning(
                f"Inbox {config.key!r} has no WEBHOOK_SECRET: its webhook deliveries cannot be authenticated, so "
                "the webhook view refuses every one of them with 401. Nothing is received from it (new messages, "
                "status changes), and UniLink marks the messages of refused deliveries as failed.",
                hint=f"Set {config.setting_name('WEBHOOK_SECRET')} to the inbox's signing secret (the `secret` of "
                "GET /api/v1/accounts/<ACCOUNT_ID>/inboxes/<INBOX_ID>, visible to administrators). For a platform "
                f"that does not sign, see {config.setting_name('WEBHOOK_ALLOW_UNSIGNED')} in docs/checks.md.",
                id="unilink.W001",
            )
        )
    if any(s != s.strip() for s in config.webhook_secrets):
        messages.append(
            CheckWarning(
                f"Inbox {config.key!r} has a WEBHOOK_SECRET with leading or trailing whitespace; signatures made "
                "with the real secret will not match it.",
                hint=f"Remove the whitespace from {config.setting_name('WEBHOOK_SECRET')} (often a trailing newline "
                "read from a file).",
                id="unilink.W006",
            )
        )
    return messages


def _check_duplicates(configs: Mapping[str, conf.InboxConfig]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    seen: dict[tuple[str, str, str], str] = {}
    secret_owner: dict[str, str] = {}
    for config in configs.values():
        if not conf.validate_inbox(config):
            target = (config.api_base, str(conf.as_int(config.account_id)), str(conf.as_int(config.inbox_id)))
            if target in seen:
                messages.append(
                    Error(
                        f"Inbox keys {seen[target]!r} and {config.key!r} both point at inbox {target[2]} of account "
                        f"{target[1]} on {target[0]}.",
                        hint=f"Keep one of them, or fix {config.setting_name('INBOX_ID')}: one remote inbox must have "
                        "one key, or its conversations would be mirrored twice.",
                        id="unilink.E008",
                    )
                )
            else:
                seen[target] = config.key
        for secret in config.webhook_secrets:
            owner = secret_owner.setdefault(secret, config.key)
            if owner != config.key:
                messages.append(
                    CheckWarning(
                        f"Inboxes {owner!r} and {config.key!r} share a webhook secret, so a delivery for one is "
                        "also accepted by the other's URL.",
                        hint=f"Each API inbox has its own secret: copy the right one into "
                        f"{config.setting_name('WEBHOOK_SECRET')}.",
                        id="unilink.W008",
                    )
                )
                break
    return messages


# -- Deployment checks (manage.py check --deploy) ---------------------------------------------


@register("unilink", deploy=True)
def check_deploy(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """In production, the access token must not travel over plain HTTP."""
    if not _ours(app_configs):
        return []
    configs, _errors = _load()
    messages: list[CheckMessage] = []
    for config in (configs or {}).values():
        parts = urlsplit(str(config.base_url or ""))
        if parts.scheme == "http" and (parts.hostname or "") not in _LOOPBACK_HOSTS:
            messages.append(
                CheckWarning(
                    f"Inbox {config.key!r} talks to UniLink over plain HTTP ({config.api_base}): its access token "
                    "and your customers' messages cross the network unencrypted.",
                    hint=f"Use an https:// address in {config.setting_name('BASE_URL')}. If the platform is only "
                    "reachable on a private network you trust, add 'unilink.W007' to SILENCED_SYSTEM_CHECKS.",
                    id="unilink.W007",
                )
            )
    return messages


# -- Database checks (manage.py check --database default) ---------------------------------------


@register("unilink", Tags.database)
def check_inbox_rows(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Inbox rows agree with settings. Tolerates a database that is not migrated yet."""
    if not _ours(app_configs) or not databases:
        return []
    configs, _errors = _load()
    if configs is None:
        return []
    from .models import Inbox

    messages: list[CheckMessage] = []
    for alias in databases:
        if not router.allow_migrate_model(alias, Inbox):
            continue
        try:
            # A savepoint, so a missing table does not break an enclosing transaction (PostgreSQL).
            with transaction.atomic(using=alias):
                rows = list(Inbox.objects.using(alias).select_related("account").order_by("key"))
        except DatabaseError:
            # Not migrated yet (ProgrammingError/OperationalError): `migrate` must be able to run.
            continue
        for row in rows:
            messages += _compare_row(row, configs, alias)
    return messages


def _compare_row(row: Any, configs: Mapping[str, conf.InboxConfig], alias: str) -> list[CheckMessage]:
    config = configs.get(row.key)
    if config is None:
        return [
            CheckWarning(
                f"The Inbox row {row.key!r} (database {alias!r}) has no configuration in settings.UNILINK: its "
                "webhooks are refused and its conversations cannot send.",
                hint=f"Add {row.key!r} back to UNILINK['INBOXES'] (or the flat keys for 'default'). If the inbox is "
                "retired on purpose, its history stays browsable in the admin; silence unilink.W010.",
                id="unilink.W010",
            )
        ]
    if conf.validate_inbox(config):
        return []  # E001-E004 already report the settings
    want = (config.api_base, conf.as_int(config.account_id), conf.as_int(config.inbox_id))
    have = (row.account.base_url, row.account.remote_id, row.remote_id)
    if want == have:
        return []
    return [
        CheckWarning(
            f"The Inbox row {row.key!r} (database {alias!r}) is inbox {have[2]} of account {have[1]} on {have[0]}, "
            f"but settings now say inbox {want[2]} of account {want[1]} on {want[0]}. The row will follow settings "
            "when next used; conversations already mirrored under it belong to the old inbox.",
            hint=f"If the change is a mistake, restore {config.setting_name('INBOX_ID')} / "
            f"{config.setting_name('ACCOUNT_ID')} / {config.setting_name('BASE_URL')}; if the move is intended, use a "
            "new inbox key so the old history stays separate.",
            id="unilink.W011",
        )
    ]
