"""Contract validation of UniLink Application API traffic against the platform's OpenAPI file.

The platform's own ``application_swagger.json`` (Chatwoot 4.15.0, MIT, shipped beside this module
in ``specs/``) is the contract, except where the platform's *code* differs from the file. Every such
difference is one entry of :data:`KNOWN_SPEC_GAPS`, the only place exceptions are made, each naming
the section of ``unilink-api.md`` (the project's reference on the platform's code) it comes from.
The gaps are applied as edits to an in-memory copy of the file; the shipped file is never changed.

Use it in tests of anything that talks to (or impersonates) the platform::

    from django_unilink.testing.contract import validate_request, validate_response

    validate_request("POST", url, headers, body_bytes, "application/json")
    validate_response("POST", url, 200, response_bytes, "application/json")

Both raise :class:`ContractViolation` (an ``AssertionError``) listing every problem.
:func:`validate_exchanges` checks a pytest-httpserver ``httpserver.log`` in one call.

Needs the ``test`` extra (``openapi-core``).
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from .. import encoding

__all__ = [
    "KNOWN_SPEC_GAPS",
    "SPEC_PATH",
    "Contract",
    "ContractViolation",
    "SpecGap",
    "default_contract",
    "patched_spec",
    "validate_exchanges",
    "validate_request",
    "validate_response",
]

#: The platform's OpenAPI file, an unchanged copy (see ``specs/SOURCE.md``).
SPEC_PATH = Path(__file__).resolve().parent / "specs" / "application_swagger.json"
#: The server URL the file declares; requests are matched as if sent there.
SPEC_SERVER = "https://app.chatwoot.com"

ACCOUNT = "/api/v1/accounts/{account_id}"
CONTACTS = f"{ACCOUNT}/contacts"
CONVERSATIONS = f"{ACCOUNT}/conversations"
CONVERSATION = f"{CONVERSATIONS}/{{conversation_id}}"
MESSAGES = f"{CONVERSATION}/messages"
MESSAGE = f"{MESSAGES}/{{message_id}}"

Spec = dict[str, Any]


class ContractViolation(AssertionError):
    """A request or response does not match the contract (the spec plus the known gaps)."""


@dataclass(frozen=True)
class SpecGap:
    """One documented difference between the platform's code and its OpenAPI file."""

    #: Short stable name.
    key: str
    #: ``"METHOD /path"`` as in the spec, or ``"every operation"``.
    operation: str
    #: Which side of the exchange differs.
    direction: Literal["request", "response", "both"]
    #: Where ``unilink-api.md`` documents the platform's real behaviour.
    reference: str
    #: What the platform really does.
    platform: str
    #: The edit of the spec dict that makes it say so (``None``: no edit needed, listed for readers).
    patch: Callable[[Spec], None] | None = None


# -- the edits ------------------------------------------------------------------------------------

MESSAGE_TYPES_SENT = ["outgoing", "incoming", "template"]
CONTENT_TYPES = list(encoding.CONTENT_TYPES)
CONVERSATION_STATUSES = list(encoding.CONVERSATION_STATUSES)
CONTACT_SORTS = ["name", "email", "phone_number", "last_activity_at", "created_at", "company_name", "city", "country"]

#: The error bodies the platform really sends (unilink-api.md §1.1, §4.2).
ERROR_BODY_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "description": "RecordInvalid / Pundit / not found / custom errors",
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        {
            "description": "RecordInvalid: full messages and the offending attributes",
            "type": "object",
            "required": ["message"],
            "not": {"required": ["error"]},
            "properties": {"message": {"type": "string"}, "attributes": {"type": "array", "items": {"type": "string"}}},
        },
        {
            "description": "devise_token_auth: missing token",
            "type": "object",
            "required": ["errors"],
            "not": {"anyOf": [{"required": ["error"]}, {"required": ["message"]}]},
            "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
        },
    ]
}


def _op(spec: Spec, path: str, method: str) -> dict[str, Any]:
    return spec["paths"][path][method]


def _schemas(spec: Spec) -> dict[str, Any]:
    return spec["components"]["schemas"]


def _contact_create_request(spec: Spec) -> None:
    schema = _schemas(spec)["contact_create_payload"]
    schema["required"] = []
    schema["properties"]["source_id"] = {"type": "string", "description": "ContactInbox source_id (with inbox_id)"}


def _contact_create_response(spec: Spec) -> None:
    _op(spec, CONTACTS, "post")["responses"]["200"]["content"]["application/json"]["schema"] = {
        "type": "object",
        "required": ["payload"],
        "properties": {
            "payload": {
                "type": "object",
                "required": ["contact", "contact_inbox"],
                "properties": {
                    "contact": {"oneOf": [{"$ref": "#/components/schemas/contact_list_item"}, {"type": "null"}]},
                    "contact_inbox": {
                        "oneOf": [
                            {
                                "type": "object",
                                "required": ["source_id", "inbox"],
                                "properties": {"source_id": {"type": "string"}, "inbox": {"type": "object"}},
                            },
                            {"type": "null"},
                        ]
                    },
                },
            }
        },
    }


def _contact_update_response(spec: Spec) -> None:
    responses = _op(spec, f"{CONTACTS}/{{id}}", "put")["responses"]
    responses["200"] = {
        "description": "Success",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/contact_show_response"}}},
    }


def _contact_sorts(spec: Spec) -> None:
    spec["components"]["parameters"]["contact_sort_param"]["schema"]["enum"] = CONTACT_SORTS + [
        f"-{name}" for name in CONTACT_SORTS
    ]


def _contact_filter_null_operator(spec: Spec) -> None:
    body = _op(spec, f"{CONTACTS}/filter", "post")["requestBody"]["content"]["application/json"]["schema"]
    body["properties"]["payload"]["items"]["properties"]["query_operator"] = {
        "type": ["string", "null"],
        "enum": ["AND", "OR", None],
    }


def _contact_inbox_hmac_verified(spec: Spec) -> None:
    body = _op(spec, f"{CONTACTS}/{{id}}/contact_inboxes", "post")["requestBody"]["content"]["application/json"]
    body["schema"]["properties"]["hmac_verified"] = {"type": "boolean"}


def _slim_inbox_provider(spec: Spec) -> None:
    _schemas(spec)["inbox_contact"]["properties"]["provider"] = {"type": ["string", "null"]}


def _conversation_create_statuses(spec: Spec) -> None:
    _schemas(spec)["conversation_create_payload"]["properties"]["status"]["enum"] = CONVERSATION_STATUSES
    message = _schemas(spec)["conversation_create_payload"]["properties"]["message"]
    message["properties"]["message_type"] = {"type": "string", "enum": MESSAGE_TYPES_SENT}


def _conversation_list_params(spec: Spec) -> None:
    parameters = _op(spec, CONVERSATIONS, "get")["parameters"]
    parameters.extend(
        [
            {"name": "source_id", "in": "query", "schema": {"type": "string"}},
            {"name": "sort_by", "in": "query", "schema": {"type": "string"}},
            {"name": "conversation_type", "in": "query", "schema": {"type": "string"}},
            {"name": "updated_within", "in": "query", "schema": {"type": "integer"}},
        ]
    )


def _conversation_object(spec: Spec) -> None:
    properties = _schemas(spec)["conversation"]["properties"]
    properties["status"]["enum"] = CONVERSATION_STATUSES
    properties["snoozed_until"] = {"type": ["string", "null"], "description": "ISO-8601 or null"}


def _toggle_status_optional(spec: Spec) -> None:
    body = _op(spec, f"{CONVERSATION}/toggle_status", "post")["requestBody"]
    body["content"]["application/json"]["schema"]["required"] = []


def _message_create_enums(spec: Spec) -> None:
    content = _op(spec, MESSAGES, "post")["requestBody"]["content"]
    for schema in (_schemas(spec)["conversation_message_create_payload"], content["multipart/form-data"]["schema"]):
        schema["properties"]["message_type"]["enum"] = MESSAGE_TYPES_SENT
        schema["properties"]["content_type"]["enum"] = CONTENT_TYPES
        schema["properties"]["source_id"] = {"type": "string"}
        schema["properties"]["echo_id"] = {"type": "string"}


def _message_status_update(spec: Spec) -> None:
    spec["paths"].setdefault(MESSAGE, {})["patch"] = {
        "operationId": "x-unilink-update-message-status",
        "summary": "Update message status (API inboxes only; not in the platform's swagger)",
        "security": [{"userApiKey": []}, {"agentBotApiKey": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {
                            "status": {"type": "string", "enum": ["sent", "delivered", "read", "failed"]},
                            "external_error": {"type": "string"},
                        },
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "Success",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/message"}}},
            }
        },
    }


def _error_bodies(spec: Spec) -> None:
    schemas = _schemas(spec)
    schemas["unilink_error"] = copy.deepcopy(ERROR_BODY_SCHEMA)
    error = {
        "description": "Error (real platform body)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/unilink_error"}}},
    }
    throttled = {
        "description": "Throttled by rack-attack: text/plain 'Retry later', no Retry-After",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    server_error = {"description": "Server error (body from the platform or a proxy)", "content": {"*/*": {}}}
    for path_item in spec["paths"].values():
        for method, operation in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for status in [s for s in responses if s[:1] in ("4", "5")]:
                del responses[status]
            responses["429"] = throttled
            responses["5XX"] = server_error
            responses["default"] = error


#: Every known difference between the platform's code and ``application_swagger.json``.
#: Nothing else is exempt: a request the client sends must match the spec as edited here.
KNOWN_SPEC_GAPS: tuple[SpecGap, ...] = (
    SpecGap(
        "header-names",
        "every operation",
        "request",
        "unilink-api.md §1.1",
        "Rack normalizes header names, so the token header api_access_token may arrive as "
        "Api-Access-Token (WSGI servers report it so). No edit: validate_request compares header "
        "names as Rack does.",
        None,
    ),
    SpecGap(
        "contact-create-request",
        f"POST {CONTACTS}",
        "request",
        "unilink-api.md §1.2",
        "inbox_id is optional (no contact inbox is made without it); source_id is accepted with it.",
        _contact_create_request,
    ),
    SpecGap(
        "contact-create-wrapped",
        f"POST {CONTACTS}",
        "response",
        "unilink-api.md §0.4, §1.2",
        'The response is wrapped: {"payload": {"contact": {...}, "contact_inbox": {"inbox", "source_id"} | null}}.',
        _contact_create_response,
    ),
    SpecGap(
        "contact-update-200",
        f"PUT {CONTACTS}/{{id}}",
        "response",
        "unilink-api.md §1.2",
        'Update answers 200 {"payload": {contact}} (the file says 204 with a bare contact).',
        _contact_update_response,
    ),
    SpecGap(
        "contact-sort-values",
        f"GET {CONTACTS}",
        "request",
        "unilink-api.md §1.2",
        "sort also takes created_at, company_name, city, country (each with a '-' prefix for descending).",
        _contact_sorts,
    ),
    SpecGap(
        "contact-filter-null-operator",
        f"POST {CONTACTS}/filter",
        "request",
        "unilink-api.md §1.2",
        "query_operator is null on the last condition.",
        _contact_filter_null_operator,
    ),
    SpecGap(
        "contact-inbox-hmac-verified",
        f"POST {CONTACTS}/{{id}}/contact_inboxes",
        "request",
        "unilink-api.md §1.2, §3.5",
        "hmac_verified (boolean) is accepted.",
        _contact_inbox_hmac_verified,
    ),
    SpecGap(
        "slim-inbox-provider-null",
        f"POST {CONTACTS}/{{id}}/contact_inboxes",
        "response",
        "unilink-api.md §1.2",
        "The slim inbox's provider is null for API channels (it is channel.try(:provider) in "
        "_inbox_slim.json.jbuilder); the file allows null in contact_inbox but not in inbox_contact.",
        _slim_inbox_provider,
    ),
    SpecGap(
        "conversation-create-enums",
        f"POST {CONVERSATIONS}",
        "request",
        "unilink-api.md §1.3",
        "status also takes 'snoozed'; the first message takes message_type outgoing|incoming|template.",
        _conversation_create_statuses,
    ),
    SpecGap(
        "conversation-list-params",
        f"GET {CONVERSATIONS}",
        "request",
        "unilink-api.md §1.3",
        "source_id, sort_by, conversation_type and updated_within are accepted query parameters.",
        _conversation_list_params,
    ),
    SpecGap(
        "conversation-list-data-wrapper",
        f"GET {CONVERSATIONS}",
        "response",
        "unilink-api.md §1.3, §6",
        "The list is wrapped in an extra 'data' level. The file's schema has it (only the prose "
        "does not), so no edit: the client unwraps data.payload.",
        None,
    ),
    SpecGap(
        "conversation-status-snoozed",
        "every operation returning a conversation",
        "response",
        "unilink-api.md §0.2, §1.3",
        "status may be 'snoozed'; snoozed_until is an ISO-8601 string or null (the file says a number).",
        _conversation_object,
    ),
    SpecGap(
        "toggle-status-optional",
        f"POST {CONVERSATION}/toggle_status",
        "request",
        "unilink-api.md §1.3",
        "status is optional: without it the platform toggles open <-> resolved.",
        _toggle_status_optional,
    ),
    SpecGap(
        "message-create-enums",
        f"POST {MESSAGES}",
        "request",
        "unilink-api.md §1.4",
        "message_type also takes 'template'; content_type takes every Message.content_type; source_id "
        "and echo_id are accepted (JSON and multipart alike).",
        _message_create_enums,
    ),
    SpecGap(
        "message-status-update",
        f"PATCH {MESSAGE}",
        "both",
        "unilink-api.md §1.4, §7",
        'Not in the file at all: PATCH {"status": sent|delivered|read|failed, "external_error"} -> message.',
        _message_status_update,
    ),
    SpecGap(
        "error-bodies",
        "every operation",
        "response",
        "unilink-api.md §1.1, §4.1, §4.2",
        'Errors are {"error"}, {"message", "attributes"} or devise {"errors": [...]}, not the file\'s '
        "bad_request_error; Pundit denials are 401 (not 403); 429 is text/plain 'Retry later'; "
        "any status may occur on any operation.",
        _error_bodies,
    ),
)


class Contract:
    """The spec with a set of gaps applied, and the validators built on it.

    The module functions use :func:`default_contract` (every known gap). Tests build a
    ``Contract`` without one gap to show that the gap is needed.
    """

    def __init__(self, gaps: Iterable[SpecGap] = KNOWN_SPEC_GAPS) -> None:
        self.gaps = tuple(gaps)
        spec: Spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
        for gap in self.gaps:
            if gap.patch is not None:
                gap.patch(spec)
        self.spec = spec
        self.rack_header_names = any(gap.key == "header-names" for gap in self.gaps)
        self._openapi: Any = None

    @property
    def openapi(self) -> Any:
        if self._openapi is None:
            from openapi_core import Config, OpenAPI

            # The edited file is checked once by a test (test_patched_spec_is_valid_openapi);
            # re-checking it on every load would cost seconds.
            self._openapi = OpenAPI.from_dict(self.spec, config=Config(spec_validator_cls=None))
        return self._openapi

    def validate_request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> None:
        """See :func:`validate_request`."""
        headers = dict(headers or {})
        if content_type is None:
            content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        request = self._mock_request(method, url, headers, body, content_type)
        if content_type and content_type.lower().startswith("multipart/form-data"):
            problems = self._multipart_problems(request, method, url, body or b"", content_type)
        else:
            problems = [_describe(e) for e in self.openapi.iter_request_errors(request)]
        _raise("Request", method, url, problems)

    def validate_response(
        self,
        method: str,
        url: str,
        status: int,
        body: bytes | str | None = None,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """See :func:`validate_response`."""
        from openapi_core.testing import MockResponse

        request = self._mock_request(method, url, None, None, None)
        data = body.encode() if isinstance(body, str) else (body or b"")
        response = MockResponse(
            data, status_code=status, headers=dict(headers or {}), content_type=content_type or "application/json"
        )
        problems = [_describe(e) for e in self.openapi.iter_response_errors(request, response)]
        _raise(f"Response {status} to", method, url, problems)

    def _mock_request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str | None,
    ) -> Any:
        from openapi_core.testing import MockRequest

        path, query = _normalize(url)
        headers = dict(headers or {})
        if self.rack_header_names:
            # Gap "header-names": "Api-Access-Token" and "api_access_token" are one header to Rack,
            # and WSGI servers report the dashed form.
            for name, value in list(headers.items()):
                headers.setdefault(name.lower().replace("-", "_"), value)
        return MockRequest(
            SPEC_SERVER,
            method,
            path,
            args=query,  # type: ignore[arg-type]  # a list of pairs keeps repeated keys
            headers=headers,
            data=body or b"",
            content_type=content_type or "",
        )

    # -- multipart ---------------------------------------------------------------------------------
    # openapi-core 0.23 does not cast multipart text fields ("false") to the schema's types, and
    # under OAS 3.1 rejects file parts (bytes) for `type: string, format: binary`. So for multipart
    # bodies openapi-core checks path, query and security, and the body is decoded and checked
    # here against the same (edited) schema.

    def _multipart_problems(self, request: Any, method: str, url: str, body: bytes, content_type: str) -> list[str]:
        from openapi_core.validation.request.validators import (
            V31RequestParametersValidator,
            V31RequestSecurityValidator,
        )

        spec_path = self.openapi.spec
        problems = [_describe(e) for e in V31RequestParametersValidator(spec_path).iter_errors(request)]
        problems += [_describe(e) for e in V31RequestSecurityValidator(spec_path).iter_errors(request)]
        path, _ = _normalize(url)
        operation = self._find_operation(method, path)
        if operation is None:
            return problems or [f"No operation {method.upper()} {path} in the spec."]
        template, op = operation
        media = op.get("requestBody", {}).get("content", {}).get("multipart/form-data")
        if media is None:
            return [*problems, f"{method.upper()} {template} does not accept multipart/form-data."]
        parts = _parse_multipart(body, content_type)
        if isinstance(parts, str):
            return [*problems, parts]
        value, cast_problems = self._cast_form(parts, media.get("schema", {}))
        problems += cast_problems
        pointer = ("paths", template, method.lower(), "requestBody", "content", "multipart/form-data", "schema")
        return problems + self._schema_problems(value, pointer)

    def _find_operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        paths = self.spec["paths"]
        if path in paths and method.lower() in paths[path]:
            return path, paths[path][method.lower()]
        for template, item in paths.items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and method.lower() in item:
                return template, item[method.lower()]
        return None

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.spec
            for key in schema["$ref"].lstrip("#/").split("/"):
                node = node[key.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def _is_binary(self, schema: dict[str, Any]) -> bool:
        schema = self._resolve(schema)
        return schema.get("format") == "binary" or "contentMediaType" in schema

    def _cast_form(self, parts: list[_Part], schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The form as the JSON value its schema describes: text cast to the declared types,
        files replaced by their file names (after checking they are file parts)."""
        properties = self._resolve(schema).get("properties", {})
        grouped: dict[str, list[_Part]] = {}
        for part in parts:
            grouped.setdefault(part.name, []).append(part)
        value: dict[str, Any] = {}
        problems: list[str] = []
        for name, group in grouped.items():
            if name not in properties:
                if any(part.filename is not None for part in group):
                    problems.append(f"{name}: a file part the operation does not declare.")
                value[name] = group[0].data.decode("utf-8", "replace")
                continue
            prop = self._resolve(properties[name])
            is_array = prop.get("type") == "array"
            item_schema = self._resolve(prop.get("items", {})) if is_array else prop
            if not is_array and len(group) > 1:
                problems.append(f"{name}: sent {len(group)} times but is not an array.")
            cast = []
            for part in group:
                if self._is_binary(item_schema):
                    if part.filename is None:
                        problems.append(f"{name}: must be a file part (with a filename).")
                    cast.append(part.filename or "")
                    continue
                if part.filename is not None:
                    problems.append(f"{name}: is a file part but the schema expects a {item_schema.get('type')}.")
                cast.append(_cast_text(part.data.decode("utf-8", "replace"), item_schema))
            value[name] = cast if is_array else cast[0]
        return value, problems

    def _schema_problems(self, value: Any, pointer: tuple[str, ...]) -> list[str]:
        from jsonschema.validators import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        root = "urn:unilink:spec"
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        escaped = "/".join(p.replace("~", "~0").replace("/", "~1") for p in pointer)
        validator = Draft202012Validator(
            {"$ref": f"{root}#/{escaped}"}, registry=Registry().with_resource(root, resource)
        )
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in validator.iter_errors(value)
        ]


@cache
def default_contract() -> Contract:
    """The contract with every known gap (built once per process)."""
    return Contract()


def patched_spec() -> Spec:
    """The platform's spec with :data:`KNOWN_SPEC_GAPS` applied (shared: do not modify)."""
    return default_contract().spec


# -- validation -----------------------------------------------------------------------------------


def validate_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> None:
    """Check one request (path, query, security header, body) against the contract.

    ``url`` may be absolute (any host: it is matched as if sent to the spec's server, and anything
    before ``/api/`` is dropped) or a path. ``content_type`` defaults to the ``Content-Type`` in
    ``headers``. Raises :class:`ContractViolation` listing every problem.
    """
    default_contract().validate_request(method, url, headers, body, content_type)


def validate_response(
    method: str,
    url: str,
    status: int,
    body: bytes | str | None = None,
    content_type: str | None = "application/json",
    headers: Mapping[str, str] | None = None,
) -> None:
    """Check one response of the platform (status and body) to ``method url`` against the contract.

    Raises :class:`ContractViolation` listing every problem.
    """
    default_contract().validate_response(method, url, status, body, content_type, headers)


def validate_exchanges(log: Iterable[tuple[Any, Any]], *, responses: bool = True) -> int:
    """Validate every ``(request, response)`` of a pytest-httpserver ``httpserver.log``.

    Werkzeug requests and responses are read duck-typed. Returns how many exchanges were checked.
    """
    count = 0
    for request, response in log:
        validate_request(request.method, request.url, dict(request.headers), request.get_data(), request.content_type)
        if responses:
            validate_response(
                request.method,
                request.url,
                response.status_code,
                response.get_data(),
                response.mimetype or "application/json",
                dict(response.headers),
            )
        count += 1
    return count


def _normalize(url: str) -> tuple[str, list[tuple[str, str]]]:
    """The API path (anything before ``/api/`` dropped, e.g. a host or prefix) and query pairs."""
    parts = urlsplit(url)
    path = parts.path
    index = path.find("/api/")
    if index > 0:
        path = path[index:]
    return path, parse_qsl(parts.query, keep_blank_values=True)


def _describe(error: BaseException) -> str:
    message = str(error)
    name = type(error).__name__
    text = message if message.startswith(name) else f"{name}: {message}"
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None)
    if schema_errors:
        details = []
        for item in schema_errors:
            where = "/".join(str(p) for p in getattr(item, "absolute_path", ())) or "(root)"
            details.append(f"{where}: {getattr(item, 'message', item)}")
        text += " [" + "; ".join(details) + "]"
    elif cause is not None and str(cause) not in text:
        text += f" ({type(cause).__name__}: {cause})"
    return text


def _raise(kind: str, method: str, url: str, problems: list[str]) -> None:
    if problems:
        path, _ = _normalize(url)
        raise ContractViolation(
            f"{kind} {method.upper()} {path} breaks the contract "
            "(application_swagger.json + KNOWN_SPEC_GAPS):\n  - " + "\n  - ".join(problems)
        )


@dataclass
class _Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


def _parse_multipart(body: bytes, content_type: str) -> list[_Part] | str:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return "The multipart body could not be parsed (bad boundary?)."
    parts: list[_Part] = []
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if not name:
            return "A multipart part has no name in its Content-Disposition."
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        parts.append(_Part(str(name), part.get_filename(), part.get_content_type(), data))
    return parts


def _cast_text(text: str, schema: dict[str, Any]) -> Any:
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    if ("integer" in types or "number" in types) and text.lstrip("-").isdigit():
        return int(text)
    if "object" in types or "array" in types:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
