"""Error answers of the emulated platform, with the bodies of unilink-api.md §4.2."""

from __future__ import annotations

from typing import Any

#: Reason phrases used in error bodies and in ``external_error`` texts.
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def reason(status: int) -> str:
    """The HTTP reason phrase for ``status`` (as Net::HTTP would print it)."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return REASONS.get(status, "Error")


class ApiError(Exception):
    """An error answer: HTTP ``status`` and a JSON-able ``body``."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body

    @property
    def text(self) -> str:
        """A one-line description for Python callers."""
        if isinstance(self.body, dict):
            return str(self.body.get("message") or self.body.get("error") or self.body.get("errors") or self.body)
        return str(self.body)


def not_found() -> ApiError:
    """RecordNotFound (§4.2)."""
    return ApiError(404, {"error": "Resource could not be found"})


def route_not_found() -> ApiError:
    """No such route: Rails' production 404 body."""
    return ApiError(404, {"status": 404, "error": "Not Found"})


def unprocessable(message: str) -> ApiError:
    """A custom 422 ``{"error": ...}`` (message create, filters, search)."""
    return ApiError(422, {"error": message})


def record_invalid(errors: list[tuple[str, str]]) -> ApiError:
    """RecordInvalid: 422 ``{"message": "<full messages joined by ', '>", "attributes": [...]}``."""
    attributes: list[str] = []
    for attribute, _ in errors:
        if attribute not in attributes:
            attributes.append(attribute)
    return ApiError(422, {"message": ", ".join(message for _, message in errors), "attributes": attributes})
