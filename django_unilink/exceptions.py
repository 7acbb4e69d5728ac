"""Every error django-unilink raises, in one hierarchy.

Each class also inherits the standard exception a Django developer would expect, so
existing handlers keep working: a configuration problem is an ``ImproperlyConfigured``,
a webhook that fails validation is a ``SuspiciousOperation`` (Django answers 400), bad
arguments from host code are ``ValueError``.

Messages name what to fix. They never contain an access token or a webhook secret.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation


class UnilinkError(Exception):
    """Base class of every django-unilink error."""


class ConfigurationError(UnilinkError, ImproperlyConfigured):
    """The ``UNILINK`` setting is missing or wrong. The message names the key to fix."""


class UnknownInboxError(ConfigurationError, LookupError):
    """An inbox key was used that ``UNILINK`` does not define."""


class InvalidInputError(UnilinkError, ValueError):
    """Host code passed something the platform would refuse; nothing was written or queued."""


class WebhookValidationError(UnilinkError, SuspiciousOperation):
    """A webhook delivery failed authentication or validation."""


# -- Errors of the remote API ---------------------------------------------------------------


class APIError(UnilinkError):
    """The UniLink API answered with an error, or could not be reached.

    ``status`` is the HTTP status (``None`` for transport errors), ``body`` the decoded
    response body (dict, list or text), ``method``/``url`` the request (the URL carries no
    secret: the token travels in a header).
    """

    #: Whether retrying the same request later may succeed.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.method = method
        self.url = url
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the keyword-only attributes when pickled (Celery result backends, multiprocessing).
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))


def _rebuild_error(cls: type[APIError], args: tuple[Any, ...], state: dict[str, Any]) -> APIError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class AuthenticationError(APIError):
    """401: the token is missing, unknown, lacks permission, or is an agent-bot token on a user-only endpoint."""


class PermissionDeniedError(APIError):
    """403: the platform refused the action (e.g. status updates outside API inboxes)."""


class NotFoundError(APIError):
    """404: the resource does not exist (or the token cannot see it)."""


class ValidationError(APIError):
    """422: the platform rejected the request's data.

    ``attributes`` lists the offending fields when the platform says which (``RecordInvalid``).
    """

    @property
    def attributes(self) -> list[str]:
        if isinstance(self.body, dict) and isinstance(self.body.get("attributes"), list):
            return [str(a) for a in self.body["attributes"]]
        return []

    @property
    def remote_message(self) -> str:
        if isinstance(self.body, dict):
            for key in ("message", "error"):
                if isinstance(self.body.get(key), str):
                    return self.body[key]
        return str(self.body or "")


class PaymentRequiredError(APIError):
    """402: the platform's plan does not include the feature."""


class RateLimitedError(APIError):
    """429: throttled. ``retry_after`` is the platform's hint in seconds, when it gives one."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the platform failed; retrying later may succeed."""

    retryable = True


class TransportError(APIError):
    """The request did not complete: connection refused/reset, DNS, TLS, or a timeout.

    ``sent`` tells whether the request may have reached the platform (read timeout,
    reset after sending): then its outcome is unknown and a blind retry may duplicate.
    """

    retryable = True

    def __init__(self, message: str, *, sent: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.sent = sent


class TimeoutError(TransportError):  # noqa: A001 - deliberate, namespaced as exceptions.TimeoutError
    """The platform did not answer within the read (or connect) timeout."""
