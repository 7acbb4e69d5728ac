"""System checks: each id fires on the bad setting it names, with a hint naming the exact key."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import CheckMessage, Error, run_checks
from django.core.checks import Warning as CheckWarning
from django.core.management import call_command
from django.test import override_settings

from django_unilink.models import Inbox

TOKEN = "tok-user-1234567890abcdef"
SECRET = "sec-inbox-1234567890abcd"
GOOD: dict[str, Any] = {
    "BASE_URL": "https://support.example.com",
    "ACCOUNT_ID": 1,
    "API_ACCESS_TOKEN": TOKEN,
    "INBOX_ID": 7,
    "WEBHOOK_SECRET": SECRET,
}
URL_TOKEN = "u" * 40


def run(unilink: Any, *, deploy: bool = False, databases: list[str] | None = None) -> list[CheckMessage]:
    """The unilink messages of a check run with ``UNILINK = unilink``."""
    with override_settings(UNILINK=unilink):
        messages = run_checks(tags=["unilink"], include_deployment_checks=deploy, databases=databases)
    return [m for m in messages if str(m.id).startswith("unilink.")]


def ids(messages: list[CheckMessage]) -> list[str]:
    return sorted(str(m.id) for m in messages)


def one(messages: list[CheckMessage], check_id: str) -> CheckMessage:
    found = [m for m in messages if m.id == check_id]
    assert len(found) == 1, f"expected one {check_id}, got {ids(messages)}"
    return found[0]


def test_good_settings_pass():
    assert run(GOOD) == []
    assert run(GOOD, deploy=True) == []


def test_the_test_settings_pass():
    """The suite's own settings must not trip a check (make test would be noisy)."""
    with override_settings():
        assert [m for m in run_checks(tags=["unilink"]) if str(m.id).startswith("unilink.")] == []


def test_secrets_never_appear_in_messages():
    bad = {**GOOD, "BASE_URL": "ftp://x", "ACCOUNT_ID": "x", "WEBHOOK_SECRET": TOKEN, "READ_TIMEOUT": "x"}
    bad["INBOXES"] = {"b c": {"INBOX_ID": 7, "WEBHOOK_ALLOW_UNSIGNED": True, "WEBHOOK_URL_TOKEN": "short-secret"}}
    messages = run(bad, deploy=True)
    assert len(messages) > 5
    text = " ".join(f"{m.msg} {m.hint}" for m in messages)
    assert TOKEN not in text and "short-secret" not in text


# -- E001-E004: reused from conf.validate_inbox ------------------------------------------------


@pytest.mark.parametrize(
    ("change", "check_id", "key"),
    [
        ({"BASE_URL": ""}, "unilink.E001", "UNILINK['BASE_URL']"),
        ({"BASE_URL": "support.example.com"}, "unilink.E002", "UNILINK['BASE_URL']"),
        ({"BASE_URL": "https://support.example.com/api/v1"}, "unilink.E002", "UNILINK['BASE_URL']"),
        ({"API_ACCESS_TOKEN": ""}, "unilink.E003", "UNILINK['API_ACCESS_TOKEN']"),
        ({"ACCOUNT_ID": "one"}, "unilink.E004", "UNILINK['ACCOUNT_ID']"),
        ({"INBOX_ID": 0}, "unilink.E004", "UNILINK['INBOX_ID']"),
    ],
)
def test_inbox_basics(change, check_id, key):
    message = one(run({**GOOD, **change}), check_id)
    assert isinstance(message, Error)
    assert key in message.hint


def test_inbox_basics_name_the_inboxes_entry():
    messages = run({**GOOD, "INBOXES": {"sales": {"INBOX_ID": "nine", "WEBHOOK_SECRET": "s2"}}})
    assert ids(messages) == ["unilink.E004"]
    assert "UNILINK['INBOXES']['sales']['INBOX_ID']" in messages[0].hint


# -- E005/E006: a malformed setting is an Error, not a crash ------------------------------------


@pytest.mark.parametrize("value", [["BASE_URL"], "https://x", 3])
def test_unilink_not_a_dict(value):
    messages = run(value, deploy=True, databases=["default"])
    assert ids(messages) == ["unilink.E005"]
    assert "settings.UNILINK" in messages[0].hint


@pytest.mark.parametrize(
    ("inboxes", "fragment"),
    [
        (["sales"], "UNILINK['INBOXES'] must be a dict"),
        ({"sales": 9}, "UNILINK['INBOXES']['sales']"),
        ({"default": {"INBOX_ID": 3}}, "defined twice"),
    ],
)
def test_inboxes_malformed(inboxes, fragment):
    messages = run({**GOOD, "INBOXES": inboxes}, deploy=True, databases=["default"])
    assert ids(messages) == ["unilink.E006"]
    assert fragment in messages[0].msg
    assert "UNILINK['INBOXES']" in messages[0].hint


# -- W003: nothing configured --------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, {}, {"READ_TIMEOUT": 3}])
def test_no_inbox_configured(value):
    messages = run(value)
    assert ids(messages) == ["unilink.W003"]
    assert isinstance(messages[0], CheckWarning)
    assert "UNILINK['INBOX_ID']" in messages[0].hint and "UNILINK['INBOXES']" in messages[0].hint


# -- W001/W002/E009: webhook authentication ------------------------------------------------------


def test_no_webhook_secret_says_what_is_at_risk():
    messages = run({**GOOD, "WEBHOOK_SECRET": ""})
    message = one(messages, "unilink.W001")
    assert isinstance(message, CheckWarning)
    assert "401" in message.msg and "refuses every one" in message.msg
    assert "UNILINK['WEBHOOK_SECRET']" in message.hint


def test_no_webhook_secret_in_an_inboxes_entry():
    messages = run({**GOOD, "INBOXES": {"sales": {"INBOX_ID": 9}}})
    assert ids(messages) == ["unilink.W001"]
    assert "UNILINK['INBOXES']['sales']['WEBHOOK_SECRET']" in messages[0].hint


def test_unsigned_mode_warns_and_needs_a_strong_url_token():
    base = {**GOOD, "WEBHOOK_SECRET": "", "WEBHOOK_ALLOW_UNSIGNED": True}
    messages = run(base)
    assert ids(messages) == ["unilink.E009", "unilink.W002"]  # no W001: unsigned mode replaces the secret
    assert "forge" in one(messages, "unilink.W002").msg
    assert "UNILINK['WEBHOOK_ALLOW_UNSIGNED']" in one(messages, "unilink.W002").hint
    error = one(messages, "unilink.E009")
    assert "has no WEBHOOK_URL_TOKEN" in error.msg
    assert "UNILINK['WEBHOOK_URL_TOKEN']" in error.hint and "32" in error.hint

    short = one(run({**base, "WEBHOOK_URL_TOKEN": "x" * 31}), "unilink.E009")
    assert "too short" in short.msg

    assert ids(run({**base, "WEBHOOK_URL_TOKEN": URL_TOKEN})) == ["unilink.W002"]


# -- E010: option types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONNECT_TIMEOUT", 0),
        ("READ_TIMEOUT", "30"),
        ("READ_TIMEOUT", True),
        ("MAX_RETRIES", -1),
        ("MAX_RETRIES", 2.5),
        ("RETRY_BACKOFF", None),
        ("STUCK_AFTER", -5),
        ("WEBHOOK_TOLERANCE", "300"),
        ("WEBHOOK_MAX_BODY", 0),
        ("WEBHOOK_PROCESSING", "sync"),
        ("WEBHOOK_LOG_DAYS", 0),
        ("TRUSTED_PROXY_COUNT", -1),
        ("USER_AGENT", ""),
        ("CELERY_QUEUE", 5),
    ],
)
def test_global_option_of_wrong_type(name, value):
    messages = run({**GOOD, name: value})
    assert ids(messages) == ["unilink.E010"]
    assert f"UNILINK[{name!r}]" in messages[0].msg and f"UNILINK[{name!r}]" in messages[0].hint


@pytest.mark.parametrize(
    ("name", "value"),
    [("CONNECT_TIMEOUT", 2.5), ("MAX_RETRIES", 0), ("WEBHOOK_PROCESSING", "celery"), ("CELERY_QUEUE", "unilink")],
)
def test_global_option_of_right_type(name, value):
    assert run({**GOOD, name: value}) == []


def test_processing_mode_hint_lists_the_modes():
    message = one(run({**GOOD, "WEBHOOK_PROCESSING": "sync"}), "unilink.E010")
    assert "'auto', 'celery', 'inline'" in message.hint


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"WEBHOOK_ALLOW_UNSIGNED": "false"}, "WEBHOOK_ALLOW_UNSIGNED"),
        ({"WEBHOOK_SECRET": 1234}, "WEBHOOK_SECRET"),
        ({"WEBHOOK_SECRET": ["a", 2]}, "WEBHOOK_SECRET"),
        ({"API_ACCESS_TOKEN": 12345}, "API_ACCESS_TOKEN"),
    ],
)
def test_inbox_option_of_wrong_type(change, key):
    messages = run({**GOOD, "INBOXES": {"sales": {"INBOX_ID": 9, "WEBHOOK_SECRET": "s2", **change}}})
    message = one(messages, "unilink.E010")
    assert f"UNILINK['INBOXES']['sales'][{key!r}]" in message.hint


# -- W004: unknown keys ------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one():
    messages = run({**GOOD, "READ_TIMEOT": 5, "base_url": "x"})
    assert ids(messages) == ["unilink.W004", "unilink.W004"]
    hints = {m.msg: m.hint for m in messages}
    assert "Did you mean 'READ_TIMEOUT'?" in hints["UNILINK has an unknown key 'READ_TIMEOT'; it is ignored."]
    assert (
        "Did you mean 'BASE_URL'? Keys are upper case."
        in hints["UNILINK has an unknown key 'base_url'; it is ignored."]
    )


def test_unknown_inbox_key_and_global_option_in_an_inbox():
    entry = {"INBOX_ID": 9, "WEBHOOK_SECRET": "s2", "WEBHOOK_SECRETS": ["x"], "READ_TIMEOUT": 3, "ZZZZ": 1}
    messages = run({**GOOD, "INBOXES": {"sales": entry}})
    assert ids(messages) == ["unilink.W004"] * 3
    by_key = {m.msg.split("unknown key ")[1].split(";")[0]: m.hint for m in messages}
    assert "Did you mean 'WEBHOOK_SECRET'?" in by_key["'WEBHOOK_SECRETS'"]
    assert "global option" in by_key["'READ_TIMEOUT'"] and "UNILINK['READ_TIMEOUT']" in by_key["'READ_TIMEOUT'"]
    assert "Known keys:" in by_key["'ZZZZ'"] and "INBOX_ID" in by_key["'ZZZZ'"]
    assert all("UNILINK['INBOXES']['sales']" in m.msg for m in messages)


def test_new_options_of_conf_defaults_are_known():
    """The known keys come from conf.DEFAULTS at call time, so options added later are not 'unknown'."""
    from django_unilink import conf

    assert run({**GOOD, **{name: conf.DEFAULTS[name] for name in conf.DEFAULTS}}) == []


# -- W005: flat keys nobody uses ------------------------------------------------------------------------


def test_flat_secret_without_flat_inbox_is_unused():
    settings_ = {k: v for k, v in GOOD.items() if k != "INBOX_ID"}
    settings_["INBOXES"] = {"sales": {"INBOX_ID": 9, "WEBHOOK_SECRET": "s2"}}
    messages = run(settings_)
    assert ids(messages) == ["unilink.W005"]
    assert "UNILINK['WEBHOOK_SECRET']" in messages[0].msg
    assert "UNILINK['INBOXES'][<key>]['WEBHOOK_SECRET']" in messages[0].hint


# -- E007: keys that are not slugs -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sales team", "ventes/eu", "é", "x" * 101])
def test_inbox_key_must_be_a_slug(key):
    messages = run({**GOOD, "INBOXES": {key: {"INBOX_ID": 9, "WEBHOOK_SECRET": "s2"}}})
    assert ids(messages) == ["unilink.E007"]
    assert f"UNILINK['INBOXES'][{key!r}]" in messages[0].hint


def test_slug_suggestion():
    message = one(run({**GOOD, "INBOXES": {"sales team": {"INBOX_ID": 9, "WEBHOOK_SECRET": "s"}}}), "unilink.E007")
    assert "'sales-team'" in message.hint


# -- E008/W008: duplicates -------------------------------------------------------------------------------


def test_two_keys_for_one_remote_inbox():
    messages = run({**GOOD, "INBOXES": {"support": {"INBOX_ID": "7", "WEBHOOK_SECRET": "s2"}}})
    assert ids(messages) == ["unilink.E008"]
    assert "'default' and 'support'" in messages[0].msg
    assert "UNILINK['INBOXES']['support']['INBOX_ID']" in messages[0].hint


def test_same_inbox_id_on_another_installation_is_fine():
    other = {"BASE_URL": "https://eu.example.com", "API_ACCESS_TOKEN": "t2", "INBOX_ID": 7, "WEBHOOK_SECRET": "s2"}
    assert run({**GOOD, "INBOXES": {"eu": other}}) == []


def test_trailing_slash_does_not_hide_a_duplicate():
    other = {"BASE_URL": GOOD["BASE_URL"] + "/", "INBOX_ID": 7, "WEBHOOK_SECRET": "s2"}
    assert ids(run({**GOOD, "INBOXES": {"eu": other}})) == ["unilink.E008"]


def test_shared_webhook_secret():
    messages = run({**GOOD, "INBOXES": {"sales": {"INBOX_ID": 9, "WEBHOOK_SECRET": ["new", SECRET]}}})
    assert ids(messages) == ["unilink.W008"]
    assert "'default' and 'sales'" in messages[0].msg
    assert "UNILINK['INBOXES']['sales']['WEBHOOK_SECRET']" in messages[0].hint


# -- E011/E012/W006: values that are obviously wrong ---------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN + "\n", " " + TOKEN, "abc def"])
def test_token_with_whitespace(token):
    messages = run({**GOOD, "API_ACCESS_TOKEN": token})
    assert ids(messages) == ["unilink.E011"]
    assert "UNILINK['API_ACCESS_TOKEN']" in messages[0].hint


@pytest.mark.parametrize("change", [{"WEBHOOK_SECRET": TOKEN}, {"WEBHOOK_SECRET": ["x", TOKEN]}])
def test_token_equal_to_webhook_secret(change):
    messages = run({**GOOD, **change})
    assert ids(messages) == ["unilink.E012"]
    assert "UNILINK['API_ACCESS_TOKEN']" in messages[0].hint and "UNILINK['WEBHOOK_SECRET']" in messages[0].hint


def test_token_equal_to_url_token():
    messages = run(
        {**GOOD, "API_ACCESS_TOKEN": URL_TOKEN, "WEBHOOK_ALLOW_UNSIGNED": True, "WEBHOOK_URL_TOKEN": URL_TOKEN}
    )
    assert ids(messages) == ["unilink.E012", "unilink.W002"]


def test_secret_with_surrounding_whitespace():
    messages = run({**GOOD, "WEBHOOK_SECRET": SECRET + "\n"})
    assert ids(messages) == ["unilink.W006"]
    assert "UNILINK['WEBHOOK_SECRET']" in messages[0].hint


# -- W007: deploy only -------------------------------------------------------------------------------------------


def test_plain_http_warns_only_on_deploy():
    plain = {**GOOD, "BASE_URL": "http://support.example.com"}
    assert run(plain) == []
    message = one(run(plain, deploy=True), "unilink.W007")
    assert "UNILINK['BASE_URL']" in message.hint and "SILENCED_SYSTEM_CHECKS" in message.hint


@pytest.mark.parametrize("url", ["http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000"])
def test_plain_http_on_loopback_is_fine(url):
    assert run({**GOOD, "BASE_URL": url}, deploy=True) == []


# -- W010/W011: database, only with --database ------------------------------------------------------------------


@pytest.mark.django_db
def test_database_check_runs_only_with_databases():
    with override_settings(UNILINK=GOOD):
        Inbox.objects.for_key("default")
    gone = {
        **GOOD,
        "INBOX_ID": None,
        "WEBHOOK_SECRET": None,
        "INBOXES": {"sales": {"INBOX_ID": 9, "WEBHOOK_SECRET": "s2"}},
    }
    assert run(gone) == []  # no --database: the check does not touch the database
    messages = run(gone, databases=["default"])
    assert ids(messages) == ["unilink.W010"]
    assert "'default'" in messages[0].msg and "UNILINK['INBOXES']" in messages[0].hint


@pytest.mark.django_db
def test_database_check_sees_a_moved_inbox():
    with override_settings(UNILINK=GOOD):
        Inbox.objects.for_key("default")
    assert run(GOOD, databases=["default"]) == []
    messages = run({**GOOD, "INBOX_ID": 8}, databases=["default"])
    assert ids(messages) == ["unilink.W011"]
    assert "inbox 7 of account 1" in messages[0].msg and "inbox 8 of account 1" in messages[0].msg
    assert "UNILINK['INBOX_ID']" in messages[0].hint


@pytest.mark.django_db(transaction=True)
def test_database_check_tolerates_an_unmigrated_database():
    call_command("migrate", "django_unilink", "zero", verbosity=0)
    try:
        messages = run(GOOD, databases=["default"])
        assert messages == []
        # The whole `check --database` command must also run, since `migrate` runs the checks first.
        with override_settings(UNILINK=GOOD):
            call_command("check", databases=["default"], verbosity=0)
    finally:
        call_command("migrate", "django_unilink", verbosity=0)
    assert Inbox.objects.count() == 0  # the table is back


def test_manage_py_check_fails_on_errors():
    """`manage.py check` exits non-zero on a unilink Error, naming its id."""
    from django.core.management.base import SystemCheckError

    with override_settings(UNILINK={**GOOD, "BASE_URL": ""}):
        with pytest.raises(SystemCheckError, match=r"unilink\.E001"):
            call_command("check", verbosity=0)
