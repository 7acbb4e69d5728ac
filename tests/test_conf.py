import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_unilink import conf
from django_unilink.exceptions import UnknownInboxError

FLAT = {
    "BASE_URL": "https://support.example.com/",
    "ACCOUNT_ID": 1,
    "API_ACCESS_TOKEN": "tok-secret-1",
    "INBOX_ID": 7,
    "WEBHOOK_SECRET": ["new-secret", "old-secret"],
}


def test_settings_are_read_at_call_time():
    with override_settings(UNILINK={**FLAT, "READ_TIMEOUT": 3}):
        assert conf.get_setting("READ_TIMEOUT") == 3
        assert conf.get_inbox_config().inbox_id == 7
    with override_settings(UNILINK={**FLAT, "INBOX_ID": 8}):
        assert conf.get_setting("READ_TIMEOUT") == conf.DEFAULTS["READ_TIMEOUT"]
        assert conf.get_inbox_config().inbox_id == 8


def test_flat_keys_define_default_and_inboxes_inherit_account_fields():
    with override_settings(
        UNILINK={
            **FLAT,
            "INBOXES": {
                "sales": {"INBOX_ID": 9, "WEBHOOK_SECRET": "s"},
                "eu": {"BASE_URL": "https://eu.example.com", "ACCOUNT_ID": 4, "API_ACCESS_TOKEN": "t2", "INBOX_ID": 2},
            },
        }
    ):
        configs = conf.inbox_configs()
        assert list(configs) == ["default", "sales", "eu"]
        assert configs["default"].webhook_secrets == ("new-secret", "old-secret")
        assert configs["default"].api_base == "https://support.example.com"
        sales = configs["sales"]
        assert (sales.base_url, sales.account_id, sales.api_access_token) == (FLAT["BASE_URL"], 1, "tok-secret-1")
        assert sales.webhook_secrets == ("s",)
        assert sales.setting_name("INBOX_ID") == "UNILINK['INBOXES']['sales']['INBOX_ID']"
        eu = configs["eu"]
        assert (eu.base_url, eu.account_id, eu.api_access_token, eu.webhook_secrets) == (
            "https://eu.example.com",
            4,
            "t2",
            (),
        )


def test_repr_never_shows_secrets():
    with override_settings(UNILINK=FLAT):
        text = repr(conf.get_inbox_config()) + str(conf.get_inbox_config())
    assert "tok-secret-1" not in text and "new-secret" not in text and "old-secret" not in text
    assert "'default'" in text


def test_unknown_inbox_names_known_ones():
    with override_settings(UNILINK=FLAT):
        with pytest.raises(UnknownInboxError, match=r"'nope'.*configured: 'default'") as info:
            conf.get_inbox_config("nope")
    assert isinstance(info.value, ImproperlyConfigured)


def test_default_defined_twice_is_an_error():
    with override_settings(UNILINK={**FLAT, "INBOXES": {"default": {"INBOX_ID": 3}}}):
        with pytest.raises(ImproperlyConfigured, match="defined twice"):
            conf.inbox_configs()


@pytest.mark.parametrize("bad", ["string", 3, None])
def test_inboxes_must_be_dicts(bad):
    with override_settings(UNILINK={"INBOXES": {"x": bad}}):
        with pytest.raises(ImproperlyConfigured, match=r"UNILINK\['INBOXES'\]\['x'\]"):
            conf.inbox_configs()


def test_validate_inbox_names_exact_keys():
    with override_settings(UNILINK={"INBOXES": {"sales": {"BASE_URL": "ftp://x", "ACCOUNT_ID": "one", "INBOX_ID": 0}}}):
        problems = conf.validate_inbox(conf.get_inbox_config("sales"))
    ids = sorted(p[0] for p in problems)
    assert ids == ["unilink.E002", "unilink.E003", "unilink.E004", "unilink.E004"]
    hints = " ".join(p[2] for p in problems)
    assert "UNILINK['INBOXES']['sales']['ACCOUNT_ID']" in hints
    assert "UNILINK['INBOXES']['sales']['API_ACCESS_TOKEN']" in hints


def test_unknown_option_is_a_programming_error():
    with pytest.raises(KeyError):
        conf.get_setting("NOT_AN_OPTION")


def test_token_with_a_line_break_is_refused_before_any_request():
    """A token read from a file keeps its newline; it must never reach an HTTP header (or an error)."""
    from django_unilink import services

    with override_settings(UNILINK={**FLAT, "API_ACCESS_TOKEN": "tok-secret-1\n"}):
        problems = conf.validate_inbox(conf.get_inbox_config())
        assert [p[0] for p in problems] == ["unilink.E011"]
        assert "UNILINK['API_ACCESS_TOKEN']" in problems[0][2]
        with pytest.raises(ImproperlyConfigured, match="whitespace") as info:
            services.ensure_contact(identifier="u-1")
    assert "tok-secret-1" not in str(info.value)
