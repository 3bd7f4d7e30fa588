"""The ONE place errors become HTTP responses.

JSON clients (everything under ``/api``) get RFC 9457 ``application/problem+json`` with a
stable ``code``; pages get a friendly HTML page with the same status. Client errors are
never 500s, and no response ever carries a stack trace. ``describe_problems`` makes the
OpenAPI document say so; the body and header caps refuse before routing
(``web/request_limits.py``).

A dependency that is down is a 503 with ``Retry-After``, never a 500: the database layer
raises ``DatabaseUnavailable`` itself (``store.db.Database.transaction``, so the CLI shares
it) and Redis ``ServiceUnavailable`` (``throttle/``); ``_on_database_error`` below is the
net for a SQLAlchemy error raised outside a transaction, classified the same way. Amazon
failing (``AmazonUnavailable``) is logged here, once per outage.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from lwa_accounts.errors import (
    AmazonUnavailable,
    LwaAccountsError,
    NotAuthenticated,
)
from lwa_accounts.outages import OutageLog

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Codes for errors raised by the framework rather than by our own error tree.
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_attempts",
    431: "request_headers_too_large",
}


def problem_body(
    status: int,
    code: str,
    *,
    title: str | None = None,
    detail: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description or HTTPStatus(status).phrase,
        "code": code,
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return body


def problem_response(
    status: int,
    code: str,
    *,
    title: str | None = None,
    detail: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = problem_body(status, code, title=title, detail=detail, extra=extra)
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def wants_json(request: Request) -> bool:
    """API paths always get problem+json; pages get HTML."""
    path = request.url.path
    return path == "/api" or path.startswith("/api/")


def error_response(request: Request, error: LwaAccountsError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
    if wants_json(request):
        if isinstance(error, NotAuthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="lwa-accounts"'  # RFC 6750
        return problem_response(
            error.status,
            error.code,
            title=error.title,
            detail=error.detail,
            extra=error.extra,
            headers=headers,
        )
    return _html_error(request, error.status, error.title, error.detail, headers)


def _html_error(
    request: Request, status: int, title: str, detail: str, headers: Mapping[str, str]
) -> Response:
    # Imported here: templating imports csrf, which imports the error tree; keep this
    # module importable on its own (the body-limit middleware uses it).
    from lwa_accounts.web.templating import render

    return render(
        request,
        "error.html",
        {"title": title, "detail": detail, "status": status},
        status_code=status,
        headers=dict(headers),
    )


def validation_errors(errors: Sequence[Any]) -> dict[str, str]:
    """Pydantic's error list -> {field: message}; the first message per field wins."""
    fields: dict[str, str] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        name = ".".join(loc) or "body"
        message = str(error.get("msg", "Invalid value."))
        if error.get("type") == "extra_forbidden":
            message = "Unknown field."
        fields.setdefault(name, message)
    return fields


async def _on_app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LwaAccountsError)
    _note_dependency_failure(exc)
    return error_response(request, exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem_response(
            400, "bad_request", title="Bad request", detail="The body is not valid JSON."
        )
    if _not_json(request) and any(tuple(error.get("loc", ())) == ("body",) for error in errors):
        # FastAPI reads a non-JSON body as no object at all: say what is wrong.
        return problem_response(
            415,
            "unsupported_media_type",
            title="Unsupported media type",
            detail="Send the body as application/json.",
        )
    return problem_response(
        422,
        "validation_failed",
        title="Validation failed",
        detail="Some fields are missing or invalid.",
        extra={"errors": validation_errors(errors)},
    )


def _matching_routes(routes: Sequence[BaseRoute], scope: Scope) -> Iterator[Route]:
    """The routes whose path matches the request's, whatever their methods, in order."""
    for route in routes:
        original = getattr(route, "original_router", None)  # FastAPI's included routers
        if original is not None:
            yield from _matching_routes(original.routes, scope)
        elif isinstance(route, Route) and route.methods:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                yield route


def _not_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in (
        request.headers
    )
    return has_body and not (media_type == "application/json" or media_type.endswith("+json"))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 405:
        # Starlette names only the first route of the path; list every method it takes.
        matching = list(_matching_routes(request.app.router.routes, request.scope))
        if matching:
            # The most specific path template that matches, and every route of it
            # (/sessions/amazon must not advertise the DELETE of /sessions/{session_id}).
            template = min(matching, key=lambda route: route.path.count("{")).path
            allowed = {m for r in matching if r.path == template for m in r.methods or ()}
            headers["Allow"] = ", ".join(sorted(allowed))
    if status == 404:
        detail = "There is nothing here."
    else:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    if wants_json(request):
        return problem_response(
            status, _HTTP_CODES.get(status, "error"), detail=detail, headers=headers
        )
    return _html_error(request, status, HTTPStatus(status).phrase, detail, headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    if wants_json(request):
        return problem_response(
            500, "internal_error", title="Internal error", detail="Something went wrong."
        )
    return _html_error(request, 500, "Something went wrong", "Please try again later.", {})


# ---- a dependency down: 503, logged once per outage -----------------------------------------

# Amazon failing is seen only here, on the way out (the LWA client raises, nobody reports
# its successes): 30 s without a failure end an outage.
_amazon_outages = OutageLog("Amazon (Login with Amazon)", logger, quiet_seconds=30)


def _note_dependency_failure(error: LwaAccountsError) -> None:
    """Count an Amazon failure in its outage log (the database and Redis log their own)."""
    if isinstance(error, AmazonUnavailable):
        _amazon_outages.failed(error)


async def _on_database_error(request: Request, exc: Exception) -> Response:
    """A SQLAlchemy error that escaped ``Database.transaction()`` (a raw engine use): 503 if
    it is the database being down or busy, else the bug it is (500, logged with its trace).

    Registered for ``SQLAlchemyError`` rather than left to ``_on_unexpected`` because the
    catch-all ``Exception`` handler runs in Starlette's outermost middleware, which re-raises
    after answering, so the server would log a traceback per request even for a 503.
    """
    services = getattr(request.app.state, "services", None)
    unavailable = services.database.unavailable(exc) if services is not None else None
    if unavailable is None:
        return await _on_unexpected(request, exc)
    return error_response(request, unavailable)


def install(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(LwaAccountsError, _on_app_error)
    app.add_exception_handler(SQLAlchemyError, _on_database_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


# ---- OpenAPI: what the API really answers on errors (security.md item 22) ----------------

PROBLEM_SCHEMA_NAME = "ProblemOut"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# Answered by middlewares and exception handlers around every operation under /api.
_EVERY_OPERATION: dict[int, str] = {
    400: "Bad request: malformed JSON, or a `Content-Length` that is not a number.",
    405: "Not a method of this path: `Allow` lists the ones it takes.",
    413: "The body is over the size limit (`payload_too_large`).",
    431: "Too many or too large request headers (`request_headers_too_large`).",
    503: "A dependency (database, Redis, Amazon) is down: retry after `Retry-After` seconds.",
}
_WITH_INPUT: dict[int, str] = {
    415: "The body is not `application/json` (`unsupported_media_type`).",
    422: "Fields missing or invalid (`validation_failed`, with `errors` per field).",
}
_AUTHENTICATED: dict[int, str] = {
    401: "No bearer token, or an unknown, expired or signed-out one (`not_authenticated`).",
}
_RESPONSE_HEADERS: dict[int, dict[str, dict[str, Any]]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    405: {"Allow": {"required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"schema": {"type": "string"}}},
    503: {"Retry-After": {"schema": {"type": "string"}}},
}


def describe_problems(schema: dict[str, Any], problem_schema: dict[str, Any]) -> None:
    """Make the OpenAPI document tell the truth about errors, in place: every error
    response of an ``/api`` operation is ``application/problem+json`` with the Problem
    schema (FastAPI would say ``application/json``, and its own 422 body), the statuses the
    middlewares and handlers answer for every operation are declared, and so are the
    headers that go with them (``Allow`` on 405, ``Retry-After``, ``WWW-Authenticate``)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components[PROBLEM_SCHEMA_NAME] = problem_schema
    ref = {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"}
    for path, item in schema.get("paths", {}).items():
        if not (path == "/api" or path.startswith("/api/")):
            continue
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None:
                _describe_operation(operation, ref)
    # FastAPI's validation error models are no longer referenced: nothing answers them.
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def _describe_operation(operation: dict[str, Any], ref: dict[str, str]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    wanted = dict(_EVERY_OPERATION)
    if operation.get("parameters") or operation.get("requestBody"):
        wanted.update(_WITH_INPUT)
    if operation.get("security"):
        wanted.update(_AUTHENTICATED)
    if operation.get("deprecated"):
        # A retired path answers its own few statuses (410 `moved`): keep its list short;
        # its error bodies are still described as problems below.
        wanted = {}
    for key, entry in responses.items():
        if not key.isdigit() or int(key) < 400:
            continue
        content: dict[str, Any] = entry.setdefault("content", {})
        if PROBLEM_JSON in content or not content or int(key) == 422:
            # Ours: a problem body, never FastAPI's application/json default.
            content.pop("application/json", None)
            content[PROBLEM_JSON] = {**content.get(PROBLEM_JSON, {}), "schema": ref}
    for status, description in wanted.items():
        entry = responses.setdefault(str(status), {"description": description})
        # An endpoint's own body for the status (RFC 8628's 400) stays; ours joins it.
        entry.setdefault("content", {})[PROBLEM_JSON] = {"schema": ref}
    for key, entry in responses.items():
        if not key.isdigit():
            continue
        if int(key) == 422 and entry.get("description") == "Validation Error":
            entry["description"] = _WITH_INPUT[422]
        headers = _RESPONSE_HEADERS.get(int(key))
        if headers:
            entry["headers"] = {**headers, **entry.get("headers", {})}
