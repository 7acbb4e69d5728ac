"""The webhook endpoint: verify, log, acknowledge; processing happens in :mod:`django_unilink.receiving`.

Order of checks, cheapest and safest first, each with its own status: unknown inbox (404),
content type (415), size (413), authenticity (401), JSON and shape (400). Every delivery past
the inbox lookup is logged as a ``WebhookEvent`` row (rejected ones small, flagged invalid),
in its own transaction, before anything else happens.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import conf, receiving
from .models import WebhookEvent
from .webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify_signature,
    verify_url_token,
)

logger = logging.getLogger("django_unilink.webhooks")

State = WebhookEvent.State

#: Request headers kept in the log (others may carry cookies or credentials).
LOGGED_HEADERS = (
    "Content-Type",
    "Content-Length",
    "User-Agent",
    "Accept",
    DELIVERY_HEADER,
    TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
    "X-Forwarded-For",
    "X-Forwarded-Proto",
)
#: How much of a rejected body is kept in its log row (enough to tell what it was).
REJECTED_BODY_EXCERPT = 1024
MAX_DELIVERY_ID = 100


class FirstRendererNegotiation(BaseContentNegotiation):
    """Always JSON: the platform's ``Accept`` header must never turn a delivery into a 406."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


def _error(status: int, message: str, **extra: Any) -> Response:
    return Response({"error": message, **extra}, status=status)


class WebhookView(APIView):
    """Receives the API channel's webhook deliveries for one configured inbox.

    No login, no CSRF, no throttling, no content negotiation: the caller is the platform,
    authenticated by the signature (or, in the opt-in unsigned mode, by the URL token).
    """

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    parser_classes = ()
    renderer_classes = (JSONRenderer,)
    content_negotiation_class = FirstRendererNegotiation
    http_method_names = ["post", "head", "options"]

    def perform_authentication(self, request: Request) -> None:
        """Nothing to do: the signature is the authentication (and ``request.user`` is never used)."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # DRF says {"detail": ...}; this endpoint always says {"error": ...}.
        if isinstance(response.data, dict) and set(response.data) == {"detail"}:
            response.data = {"error": str(response.data["detail"])}
        return response

    def head(self, request: Request, inbox: str, token: str | None = None) -> Response:
        if _resolve_config(inbox, token) is None:
            return Response(status=404)
        return Response(status=200)

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        if _resolve_config(kwargs.get("inbox", ""), kwargs.get("token")) is None:
            return _error(404, "unknown inbox")
        return Response(status=200, headers={"Allow": "POST, HEAD, OPTIONS"})

    def post(self, request: Request, inbox: str, token: str | None = None) -> Response:
        django_request: HttpRequest = request._request
        config = _resolve_config(inbox, token)
        if config is None:
            logger.warning("Webhook for unknown inbox %r from %s.", inbox[:100], _remote_ip(django_request))
            response = _error(404, "unknown inbox")
            response._has_been_logged = token is not None  # type: ignore[attr-defined]  # see below
            return response
        response = _Delivery(django_request, config, token).handle()
        if token is not None:
            # Django would log 4xx answers with the path, which holds the URL token (a secret);
            # this view logs them itself, without it.
            response._has_been_logged = True  # type: ignore[attr-defined]
        return response


def _resolve_config(key: str, token: str | None) -> conf.InboxConfig | None:
    """The inbox config for a URL, or ``None`` (404) for unknown keys and unsigned URLs that are off."""
    config = conf.inbox_configs().get(key)
    if config is None:
        return None
    if token is not None and not (config.allow_unsigned and config.webhook_url_token):
        return None  # the token URL exists only for inboxes in unsigned mode
    return config


def _remote_ip(request: HttpRequest) -> str | None:
    """The client address, honouring ``TRUSTED_PROXY_COUNT`` reverse proxies; ``None`` if unparseable."""
    candidate = request.META.get("REMOTE_ADDR", "")
    proxies = int(conf.get_setting("TRUSTED_PROXY_COUNT") or 0)
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        # Each trusted proxy appended the address it saw; the client is the N-th from the right.
        if len(hops) >= proxies:
            candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate.strip()))
    except ValueError:
        return None


def _clean(text: str, limit: int) -> str:
    """Text any database can store: no NUL characters, no lone surrogates, at most ``limit`` long."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")[:limit]


class _Delivery:
    """One POST, from raw request to answer."""

    def __init__(self, request: HttpRequest, config: conf.InboxConfig, token: str | None) -> None:
        self.request = request
        self.config = config
        self.token = token
        self.body = b""
        self.signed_at: Any = None
        self.delivery_id: str | None = None

    # -- steps ---------------------------------------------------------------------------------

    def handle(self) -> Response:
        headers = self.request.headers
        content_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return self.reject(415, "the content type must be application/json")
        max_body = int(conf.get_setting("WEBHOOK_MAX_BODY"))
        try:
            declared = int(self.request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return self.reject(400, "invalid Content-Length header")
        if declared > max_body:
            return self.reject(413, f"the body is larger than {max_body} bytes")
        try:
            self.body = self.request.body
        except RequestDataTooBig:
            return self.reject(413, f"the body is larger than {max_body} bytes")
        if len(self.body) > max_body:
            self.body = b""
            return self.reject(413, f"the body is larger than {max_body} bytes")
        delivery = headers.get(DELIVERY_HEADER)
        if delivery is not None:
            delivery = delivery.strip()
            if not delivery or len(delivery) > MAX_DELIVERY_ID or not delivery.isprintable():
                return self.reject(400, f"invalid {DELIVERY_HEADER} header")
            self.delivery_id = delivery

        reason = self.authenticate()
        if reason is not None:
            return self.reject(401, reason)

        try:
            payload = receiving.decode_payload(self.body)
        except receiving.PayloadError as exc:
            return self.refuse_payload(exc, event="")
        try:
            receiving.validate_payload(payload, self.config)
        except receiving.PayloadError as exc:
            return self.refuse_payload(exc, event=payload["event"])

        # Truncated: an unknown event (not length-checked by a serializer) may have any name.
        row = self.store(valid=True, state=State.RECEIVED, event=_clean(payload["event"], 100))
        if row is None:
            logger.info("Duplicate webhook delivery %s for inbox %r ignored.", self.delivery_id, self.config.key)
            return Response({"status": "duplicate"}, status=200)
        receiving.announce(row)
        state = receiving.dispatch(row)
        # Even a failed processing answers 200: the data is kept on the row for replay, and a
        # non-2xx would make the platform mark the message failed.
        return Response({"status": "queued" if state == State.RECEIVED else state}, status=200)

    def authenticate(self) -> str | None:
        """``None`` when authentic, else the reason (which never says which secret was tried)."""
        headers = self.request.headers
        signature, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        if self.token is not None:
            if not verify_url_token(self.token, self.config.webhook_url_token):
                return "invalid URL token"
            if not (signature and self.config.webhook_secrets):
                return None  # unsigned mode: the token is the authentication
        try:
            self.signed_at = verify_signature(
                self.body,
                signature=signature,
                timestamp=timestamp,
                secrets=self.config.webhook_secrets,
                tolerance=float(conf.get_setting("WEBHOOK_TOLERANCE")),
            )
        except SignatureError as exc:
            return exc.reason
        return None

    def reject(self, status: int, reason: str) -> Response:
        """Log and record a refused delivery (without its body's personal data in the log)."""
        logger.warning(
            "Rejected webhook for inbox %r from %s: %s (HTTP %s, delivery %s).",
            self.config.key,
            _remote_ip(self.request),
            reason,
            status,
            self.delivery_id,
        )
        self.store(valid=False, state=State.INVALID, event="", invalid_reason=reason)
        return _error(status, reason)

    def refuse_payload(self, exc: receiving.PayloadError, *, event: str) -> Response:
        """A verified delivery with a body the app cannot use: logged, announced, answered 400."""
        event = _clean(event, 100)
        logger.warning(
            "Invalid webhook for inbox %r (event %r, delivery %s): %s",
            self.config.key,
            event,
            self.delivery_id,
            ", ".join(exc.fields) or "body",
        )
        row = self.store(valid=True, state=State.INVALID, event=event, invalid_reason=str(exc))
        if row is None:
            return Response({"status": "duplicate"}, status=200)
        receiving.announce(row)  # verified, so announced, even though it cannot be processed
        return _error(400, str(exc), fields=exc.fields) if exc.fields else _error(400, str(exc))

    # -- the log row ---------------------------------------------------------------------------

    def store(self, *, valid: bool, state: str, event: str, invalid_reason: str = "") -> WebhookEvent | None:
        """Write the log row in its own transaction; ``None`` when it duplicates a verified delivery."""
        text = self.body.decode("utf-8", "replace")
        if not valid:
            # Unverified: keep a small excerpt only; it may be anyone's data, or garbage.
            text = text[:REJECTED_BODY_EXCERPT]
        # No inbox row lookup here (it would cost a query on the path the platform waits for):
        # ``inbox_key`` names the inbox; processing links the ``inbox`` foreign key.
        row = WebhookEvent(
            inbox_key=self.config.key,
            delivery_id=self.delivery_id,
            event=event,
            headers=self.logged_headers(),
            body=_clean(text, len(text)),
            remote_ip=_remote_ip(self.request),
            valid=valid,
            invalid_reason=_clean(invalid_reason, 255),
            signed_at=self.signed_at,
            state=state,
            received_at=timezone.now(),
        )
        try:
            if connection.in_atomic_block:
                # Inside a transaction (a test's, or ATOMIC_REQUESTS forced elsewhere): a savepoint
                # keeps it usable after a duplicate.
                with transaction.atomic():
                    row.save(force_insert=True)
            else:
                row.save(force_insert=True)  # autocommit: the INSERT is its own, committed, transaction
        except IntegrityError:
            if valid and self.delivery_id:
                return None  # the unique (delivery id, valid) constraint: seen already
            raise
        return row

    def logged_headers(self) -> dict[str, str]:
        headers = self.request.headers
        kept = {}
        for name in LOGGED_HEADERS:
            value = headers.get(name)
            if value is None:
                continue
            if name == SIGNATURE_HEADER:
                value = "sha256=(redacted)" if value.strip().startswith("sha256=") else "(redacted)"
            kept[name] = _clean(value, 500)
        return kept


#: The view as routed: exempt from ATOMIC_REQUESTS so the log row commits on its own.
webhook_view = transaction.non_atomic_requests(WebhookView.as_view())
