"""``manage.py unilink_check`` against a platform served by pytest-httpserver on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpResponse
from django.test import override_settings
from django.urls import include, path
from pytest_httpserver import HTTPServer

from django_unilink.management.commands.unilink_check import Command
from django_unilink.testing.contract import validate_exchanges
from tests import client_payloads as p
from tests.client_support import (
    free_port,
    make_httpserver,  # noqa: F401  # keeps the api_access_token header
)

SECRET = p.api_inbox()["secret"]
WEBHOOK_PATH = "/unilink/webhook/default/"


# A stand-in for django_unilink.urls (written elsewhere), so the URL comparison can be tested here.
def _view(request: Any, **kwargs: str) -> HttpResponse:
    return HttpResponse()


urlpatterns = [
    path(
        "unilink/",
        include(
            (
                [
                    path("webhook/<slug:inbox>/", _view, name="webhook"),
                    path("webhook/<slug:inbox>/<str:token>/", _view, name="webhook-unsigned"),
                ],
                "unilink",
            )
        ),
    )
]


class NoUrls:
    """A URLconf without django_unilink.urls."""

    urlpatterns: list = []


@pytest.fixture
def platform(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    yield httpserver
    httpserver.check_assertions()
    validate_exchanges(httpserver.log)  # the command's requests, and these responses, keep to the contract


def unilink(server: HTTPServer, **extra: Any) -> dict[str, Any]:
    return {
        "BASE_URL": server.url_for("/"),
        "ACCOUNT_ID": 1,
        "API_ACCESS_TOKEN": p.TOKEN,
        "INBOX_ID": 7,
        "WEBHOOK_SECRET": SECRET,
        **extra,
    }


def run(settings: dict[str, Any], *args: str, urlconf: Any = __name__) -> tuple[str, CommandError | None]:
    out = StringIO()
    error = None
    with override_settings(UNILINK=settings, ROOT_URLCONF=urlconf):
        try:
            call_command("unilink_check", *args, stdout=out, no_color=True)
        except CommandError as exc:
            error = exc
    text = out.getvalue()
    # Nothing secret is ever printed: not the token (the profile carries it), the secret, or the HMAC token.
    for secret in (p.TOKEN, SECRET, p.api_inbox()["hmac_token"]):
        assert secret not in text + str(error or "")
    return text, error


def serve(server: HTTPServer, *, profile: Any = None, inbox: Any = None, inbox_id: int = 7) -> None:
    for uri, body in (("/api/v1/profile", profile), (f"/api/v1/accounts/1/inboxes/{inbox_id}", inbox)):
        if isinstance(body, tuple):
            server.expect_request(uri).respond_with_json(body[1], status=body[0])
        elif body is not None:
            server.expect_request(uri).respond_with_json(body)


def test_all_good(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(), inbox=p.api_inbox(webhook_url=f"https://shop.example.com{WEBHOOK_PATH}"))
    text, error = run(unilink(platform))
    assert error is None
    assert "[default]" in text and "inbox 7: OK" in text
    assert "OK   token: works; user Ops <ops@example.com>, administrator of account 1." in text
    assert "OK   inbox: 7 'UniLink API' is an API channel (inbox_identifier x9Fq2kLmNpQr7sTu)." in text
    assert f"OK   webhook: the platform sends events to https://shop.example.com{WEBHOOK_PATH}, this site's" in text
    assert "OK   secret: UNILINK['WEBHOOK_SECRET'] matches the channel's signing secret." in text
    assert text.rstrip().endswith("All 1 inbox(es) OK.")
    sent = [request.headers["api_access_token"] for request, _ in platform.log]
    assert sent == [p.TOKEN, p.TOKEN]


def test_agent_bot_token_is_named_as_such(platform: HTTPServer) -> None:
    serve(platform, profile=(401, p.BOT_DENIED))
    text, error = run(unilink(platform))
    assert error is not None and "1 of 1 inbox(es) failed: default" in str(error)
    assert "FAIL token: it is an agent-bot token" in text
    assert "User's access token" in text
    assert "inbox 7: FAILED" in text


def test_unknown_token(platform: HTTPServer) -> None:
    serve(platform, profile=(401, p.INVALID_TOKEN))
    text, error = run(unilink(platform))
    assert error is not None
    assert (
        "FAIL token: refused by the platform (HTTP 401: 'Invalid Access Token'). Check UNILINK['API_ACCESS_TOKEN']"
        in text
    )


def test_token_lost_on_the_way_points_at_the_proxy(platform: HTTPServer) -> None:
    serve(platform, profile=(401, p.DEVISE_SIGN_IN))
    text, error = run(unilink(platform))
    assert error is not None
    assert "received no token" in text and "underscores_in_headers on" in text


def test_user_not_in_the_account(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(account_id=2))
    text, error = run(unilink(platform))
    assert error is not None
    assert "not a member of account 1" in text and "UNILINK['ACCOUNT_ID']" in text


def test_agent_token_works_with_warnings(platform: HTTPServer) -> None:
    inbox = p.api_inbox(webhook_url=f"https://shop.example.com{WEBHOOK_PATH}")
    del inbox["secret"], inbox["hmac_token"]  # administrators only
    serve(platform, profile=p.profile(role="agent"), inbox=inbox)
    text, error = run(unilink(platform))
    assert error is None
    assert "role 'agent' in account 1" in text
    assert "WARN token: not an administrator" in text
    assert "secret: not visible with this token" in text


def test_inbox_not_found(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(), inbox=(404, p.NOT_FOUND))
    text, error = run(unilink(platform))
    assert error is not None
    assert "FAIL inbox: 7 does not exist in account 1" in text and "UNILINK['INBOX_ID']" in text


def test_inbox_that_is_not_an_api_channel(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(), inbox=p.api_inbox(channel_type="Channel::WebWidget"))
    text, error = run(unilink(platform))
    assert error is not None
    assert "is a Channel::WebWidget inbox, not an API channel" in text


def test_secret_mismatch_fails(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(), inbox=p.api_inbox(webhook_url=f"https://shop.example.com{WEBHOOK_PATH}"))
    text, error = run(unilink(platform, WEBHOOK_SECRET="something-else"))
    assert error is not None
    assert "FAIL secret: UNILINK['WEBHOOK_SECRET'] does not match" in text


def test_rotated_secret_in_second_place_warns(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(), inbox=p.api_inbox(webhook_url=f"https://shop.example.com{WEBHOOK_PATH}"))
    text, error = run(unilink(platform, WEBHOOK_SECRET=["newer", SECRET]))
    assert error is None
    assert "WARN secret: an older entry of UNILINK['WEBHOOK_SECRET'] matches" in text


def test_webhook_url_elsewhere_warns(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(), inbox=p.api_inbox(webhook_url="https://user:pw@old.example.com/hooks/x"))
    text, error = run(unilink(platform))
    assert error is None  # maybe a proxy rewrites the path: a warning, not a failure
    assert "WARN webhook: the platform sends events to https://user:***@old.example.com/hooks/x" in text
    assert f"this site's webhook path for inbox 'default' is {WEBHOOK_PATH}" in text
    assert ":pw@" not in text


def test_unsigned_inbox_url_with_its_token_matches(platform: HTTPServer) -> None:
    url_token = "url-token-0123456789"
    inbox = p.api_inbox(webhook_url=f"https://shop.example.com/unilink/webhook/default/{url_token}/")
    serve(platform, profile=p.profile(), inbox=inbox)
    text, error = run(unilink(platform, WEBHOOK_ALLOW_UNSIGNED=True, WEBHOOK_URL_TOKEN=url_token))
    assert error is None
    assert "OK   webhook: the platform sends events to https://shop.example.com/unilink/webhook/default/***/" in text
    assert url_token not in text


def test_no_webhook_url_warns(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(), inbox=p.api_inbox(webhook_url=""))
    text, error = run(unilink(platform))
    assert error is None
    assert "WARN webhook: the inbox has no webhook URL" in text and f"https://<this site>{WEBHOOK_PATH}" in text


def test_without_the_apps_urls_the_webhook_url_is_only_shown(platform: HTTPServer) -> None:
    serve(platform, profile=p.profile(), inbox=p.api_inbox())
    text, error = run(unilink(platform), urlconf=NoUrls)
    assert error is None
    assert "(django_unilink.urls is not installed here)" in text


def test_inbox_option_limits_the_check(platform: HTTPServer) -> None:
    serve(
        platform,
        profile=p.profile(),
        inbox=p.api_inbox(9, webhook_url="https://shop.example.com/unilink/webhook/sales/"),
        inbox_id=9,
    )
    settings = unilink(platform, INBOXES={"sales": {"INBOX_ID": 9, "WEBHOOK_SECRET": SECRET}})
    text, error = run(settings, "--inbox", "sales")
    assert error is None
    assert "[sales]" in text and "[default]" not in text
    assert "this site's webhook path" in text
    assert [request.path for request, _ in platform.log] == ["/api/v1/profile", "/api/v1/accounts/1/inboxes/9"]


def test_unknown_inbox_key() -> None:
    text, error = run(unilink_settings_without_server(), "--inbox", "nope")
    assert error is not None and "Unknown inbox key(s): 'nope'. Configured: 'default'." in str(error)


def test_nothing_configured() -> None:
    text, error = run({})
    assert error is not None and "No UniLink inbox is configured" in str(error)


def test_bad_settings_fail_without_calling_out() -> None:
    settings = unilink_settings_without_server()
    settings["API_ACCESS_TOKEN"] = ""
    text, error = run(settings)
    assert error is not None
    assert "FAIL settings (unilink.E003)" in text and "UNILINK['API_ACCESS_TOKEN']" in text


def test_unreachable_platform_fails_with_the_transport_error() -> None:
    settings = unilink_settings_without_server()
    settings["BASE_URL"] = f"http://127.0.0.1:{free_port()}"
    text, error = run(settings)
    assert error is not None
    assert "FAIL token: could not be checked: GET /api/v1/profile: could not connect" in text


def test_help_explains_the_command() -> None:
    text = " ".join(Command().create_parser("manage.py", "unilink_check").format_help().split())
    assert "--inbox KEY" in text
    assert "agent bot" in text and "API channel" in text and "Exits with status 1" in text


def unilink_settings_without_server() -> dict[str, Any]:
    return {"BASE_URL": "http://127.0.0.1:9", "ACCOUNT_ID": 1, "API_ACCESS_TOKEN": p.TOKEN, "INBOX_ID": 7}


def test_against_the_emulator_with_the_apps_own_urls() -> None:
    """End to end: the testing kit's emulator as the platform, tests.urls (django_unilink.urls) as the site."""
    from django_unilink.testing.emulator import Emulator

    with Emulator(api_access_token=p.TOKEN) as emu:
        emu.add_inbox(7, webhook_url=f"http://127.0.0.1:8000{WEBHOOK_PATH}", secret=SECRET)
        settings = {
            "BASE_URL": emu.url,
            "ACCOUNT_ID": emu.account_id,
            "API_ACCESS_TOKEN": p.TOKEN,
            "INBOX_ID": 7,
            "WEBHOOK_SECRET": SECRET,
        }
        text, error = run(settings, urlconf="tests.urls")
    assert error is None, text
    assert "administrator of account 1" in text
    assert "is an API channel" in text
    assert f"http://127.0.0.1:8000{WEBHOOK_PATH}, this site's webhook path." in text
    assert "matches the channel's signing secret" in text
