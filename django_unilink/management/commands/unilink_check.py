"""``manage.py unilink_check``: check each configured inbox against the live UniLink API."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import NoReverseMatch, reverse

from ... import conf
from ...client import UnilinkClient
from ...exceptions import APIError, AuthenticationError, ConfigurationError, NotFoundError

API_CHANNEL = "Channel::Api"


@dataclass
class Report:
    """What was found for one inbox: lines to print, and whether anything failed."""

    key: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (level, text); level: ok|warn|fail|info
    failed: bool = False

    def ok(self, text: str) -> None:
        self.lines.append(("ok", text))

    def info(self, text: str) -> None:
        self.lines.append(("info", text))

    def warn(self, text: str) -> None:
        self.lines.append(("warn", text))

    def fail(self, text: str) -> None:
        self.lines.append(("fail", text))
        self.failed = True


class Command(BaseCommand):
    help = (
        "Call the UniLink API with each configured inbox's token and report, per inbox: whether the "
        "token works (and whose it is: administrator, agent, or an agent bot, which cannot be used), "
        "whether the inbox exists and is an API channel, the webhook URL the platform has for it "
        "(compared with this site's webhook URL when django_unilink.urls is installed), and, with an "
        "administrator token, whether the configured webhook secret matches the channel's. "
        "Nothing is written anywhere. Exits with status 1 if any inbox fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--inbox",
            action="append",
            dest="inboxes",
            metavar="KEY",
            help="Check only this inbox key (as in UNILINK['INBOXES'], or 'default'); repeat for several.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            configs = conf.inbox_configs()
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        if not configs:
            raise CommandError(
                "No UniLink inbox is configured: set UNILINK['INBOX_ID'] (and BASE_URL, ACCOUNT_ID, "
                "API_ACCESS_TOKEN) or UNILINK['INBOXES']."
            )
        wanted = options.get("inboxes") or list(configs)
        unknown = [key for key in wanted if key not in configs]
        if unknown:
            raise CommandError(
                f"Unknown inbox key(s): {', '.join(map(repr, unknown))}. Configured: {', '.join(map(repr, configs))}."
            )
        reports = [self.check_inbox(configs[key]) for key in wanted]
        for report in reports:
            self.print_report(report, configs[report.key])
        failed = [r.key for r in reports if r.failed]
        if failed:
            raise CommandError(f"{len(failed)} of {len(reports)} inbox(es) failed: {', '.join(failed)}.")
        self.stdout.write(self.style.SUCCESS(f"All {len(reports)} inbox(es) OK."))

    # -- checks ------------------------------------------------------------------------------------

    def check_inbox(self, config: conf.InboxConfig) -> Report:
        """Run every check of one inbox; never raises for API or configuration problems."""
        report = Report(config.key)
        problems = conf.validate_inbox(config)
        if problems:
            for check_id, message, hint in problems:
                report.fail(f"settings ({check_id}): {message} {hint}")
            return report
        try:
            client = UnilinkClient.from_config(config)
        except ConfigurationError as exc:
            report.fail(f"settings: {exc}")
            return report
        with client:
            if self.check_token(client, config, report):
                self.check_remote_inbox(client, config, report)
        return report

    def check_token(self, client: UnilinkClient, config: conf.InboxConfig, report: Report) -> bool:
        try:
            profile = client.get_profile()
        except AuthenticationError as exc:
            remote = _remote_text(exc)
            if "not authorized for bots" in remote.lower():
                report.fail(
                    f"token: it is an agent-bot token ({remote!r}). Agent bots cannot create contacts or list "
                    f"conversations: set {config.setting_name('API_ACCESS_TOKEN')} to a User's access token "
                    "(an administrator's is best; Profile settings > Access token)."
                )
            elif isinstance(exc.body, dict) and "errors" in exc.body:
                # devise's answer when no token arrived at all: the header was lost on the way.
                report.fail(
                    f"token: the platform received no token ({remote!r}). A proxy in front of it probably drops "
                    "headers with underscores such as api_access_token (nginx: set 'underscores_in_headers on;')."
                )
            else:
                report.fail(
                    f"token: refused by the platform (HTTP {exc.status}: {remote!r}). "
                    f"Check {config.setting_name('API_ACCESS_TOKEN')}."
                )
            return False
        except APIError as exc:
            report.fail(f"token: could not be checked: {exc}")
            return False
        account_id = conf.as_int(config.account_id)
        who = f"{profile.get('name') or profile.get('available_name') or '?'} <{profile.get('email') or '?'}>"
        membership = next(
            (a for a in profile.get("accounts") or [] if isinstance(a, dict) and a.get("id") == account_id), None
        )
        if membership is None:
            report.fail(
                f"token: works (user {who}) but the user is not a member of account {account_id}. Check "
                f"{config.setting_name('ACCOUNT_ID')}, or use a token of a user of that account."
            )
            return False
        role = membership.get("role") or profile.get("role") or "unknown"
        if role == "administrator":
            report.ok(f"token: works; user {who}, administrator of account {account_id}.")
        else:
            report.ok(f"token: works; user {who}, role {role!r} in account {account_id}.")
            report.warn(
                "token: not an administrator: it sees only conversations of inboxes it is a member of, cannot "
                "read the channel's webhook secret, and reopening a conversation assigns it to this user."
            )
        return True

    def check_remote_inbox(self, client: UnilinkClient, config: conf.InboxConfig, report: Report) -> None:
        inbox_id = conf.as_int(config.inbox_id)
        try:
            inbox = client.get_inbox(inbox_id)
        except NotFoundError:
            report.fail(
                f"inbox: {inbox_id} does not exist in account {config.account_id} (or the token cannot see it). "
                f"Check {config.setting_name('INBOX_ID')}."
            )
            return
        except APIError as exc:
            report.fail(f"inbox: could not be read: {exc}")
            return
        name = inbox.get("name") or "?"
        channel = inbox.get("channel_type") or "?"
        if channel != API_CHANNEL:
            report.fail(
                f"inbox: {inbox_id} {name!r} is a {channel} inbox, not an API channel ({API_CHANNEL}). "
                f"Set {config.setting_name('INBOX_ID')} to an API-channel inbox."
            )
            return
        identifier = inbox.get("inbox_identifier")
        report.ok(
            f"inbox: {inbox_id} {name!r} is an API channel"
            + (f" (inbox_identifier {identifier})." if identifier else ".")
        )
        self.check_webhook_url(inbox, config, report)
        self.check_secret(inbox, config, report)

    def check_webhook_url(self, inbox: dict[str, Any], config: conf.InboxConfig, report: Report) -> None:
        webhook_url = str(inbox.get("webhook_url") or "")
        expected = _expected_webhook_paths(config)
        shown_expected = _redact_url(expected[0], config) if expected else ""
        if not webhook_url:
            report.warn(
                "webhook: the inbox has no webhook URL, so the platform sends this site no events. Set it in "
                "the inbox settings" + (f" to https://<this site>{shown_expected}" if expected else "") + "."
            )
            return
        shown = _redact_url(webhook_url, config)
        if not expected:
            report.info(f"webhook: the platform sends events to {shown} (django_unilink.urls is not installed here).")
        elif urlsplit(webhook_url).path in expected:
            report.ok(f"webhook: the platform sends events to {shown}, this site's webhook path.")
        else:
            report.warn(
                f"webhook: the platform sends events to {shown}, but this site's webhook path for inbox "
                f"{config.key!r} is {shown_expected}. Fix the inbox's webhook URL unless a proxy rewrites the path."
            )

    def check_secret(self, inbox: dict[str, Any], config: conf.InboxConfig, report: Report) -> None:
        remote = inbox.get("secret")
        where = config.setting_name("WEBHOOK_SECRET")
        if not remote:
            report.info("secret: not visible with this token (administrators only); not compared.")
            return
        if not config.webhook_secrets:
            report.warn(f"secret: the channel signs its webhooks but {where} is not set.")
            return
        matches = [hmac.compare_digest(str(remote).encode(), s.encode()) for s in config.webhook_secrets]
        if matches[0]:
            report.ok(f"secret: {where} matches the channel's signing secret.")
        elif any(matches):
            report.warn(f"secret: an older entry of {where} matches; put the current secret first.")
        else:
            report.fail(
                f"secret: {where} does not match the channel's signing secret, so every webhook would be "
                "rejected. Copy the secret from the inbox settings (or the inbox API's 'secret')."
            )

    # -- output ------------------------------------------------------------------------------------

    def print_report(self, report: Report, config: conf.InboxConfig) -> None:
        styles: dict[str, tuple[Callable[[str], str], str]] = {
            "ok": (self.style.SUCCESS, "OK  "),
            "warn": (self.style.WARNING, "WARN"),
            "fail": (self.style.ERROR, "FAIL"),
            "info": (str, "    "),
        }
        status = self.style.ERROR("FAILED") if report.failed else self.style.SUCCESS("OK")
        self.stdout.write(
            f"[{report.key}] {_redact_url(str(config.base_url), config)} account {config.account_id} "
            f"inbox {config.inbox_id}: {status}"
        )
        for level, text in report.lines:
            style, label = styles[level]
            self.stdout.write(f"  {style(label)} {text}")


def _remote_text(exc: APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return body[key]
        if isinstance(body.get("errors"), list):
            return "; ".join(map(str, body["errors"]))
    return str(body or "")


def _expected_webhook_paths(config: conf.InboxConfig) -> list[str]:
    """This site's webhook path(s) for the inbox, preferred first; empty when the URLs are not installed."""
    paths = []
    if config.allow_unsigned and config.webhook_url_token:
        # Platforms older than 4.13 do not sign: such inboxes use the URL with the token in it.
        try:
            paths.append(
                reverse("unilink:webhook-unsigned", kwargs={"inbox": config.key, "token": config.webhook_url_token})
            )
        except NoReverseMatch:
            pass
    try:
        paths.append(reverse("unilink:webhook", kwargs={"inbox": config.key}))
    except NoReverseMatch:
        pass
    return paths


def _redact_url(url: str, config: conf.InboxConfig) -> str:
    """The URL without a password or the configured URL token."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        url = urlunsplit(parts._replace(netloc=netloc))
    if config.webhook_url_token:
        url = url.replace(config.webhook_url_token, "***")
    return url
