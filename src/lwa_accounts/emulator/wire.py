"""Amazon's wire format: JSON error bodies, token headers and form-or-JSON request bodies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_BODY_BYTES = 64 * 1024
# Token responses must never be cached (RFC 6749 section 5.1; Amazon sends the same).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class WireError(Exception):
    """An error Amazon would answer with: rendered as {"error_description", "error"}."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.extra: dict[str, Any] = dict(extra or {})


class ControlError(WireError):
    """A bad test-control request (404 unknown, 409 conflict, 422 invalid)."""


def missing(name: str) -> WireError:
    return WireError("invalid_request", f"The request is missing a required parameter : {name}")


def invalid(name: str, error: str = "invalid_request") -> WireError:
    return WireError(error, f"The request has an invalid parameter : {name}")


def error_response(
    error: WireError, *, request_id: str | None = None, no_store: bool = False
) -> JSONResponse:
    # error_description first: that is the order Amazon uses.
    body: dict[str, Any] = {"error_description": error.description, "error": error.error}
    body.update(error.extra)
    headers = dict(NO_STORE) if no_store else {}
    if request_id is not None:
        body["request_id"] = request_id
        headers["x-amzn-RequestId"] = request_id
    return JSONResponse(body, status_code=error.status, headers=headers)


def new_request_id() -> str:
    return str(uuid.uuid4())


async def read_params(request: Request) -> dict[str, str]:
    """The POST body as flat string parameters, whether form-encoded or JSON.

    Nested JSON values (such as ``scope_data``) come back JSON-encoded, as a form would carry
    them. Anything unparseable is an ``invalid_request``.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise WireError("invalid_request", "The request is malformed: body too large")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise WireError("invalid_request", "The request is malformed: body too large")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        return _json_params(raw)
    if not raw:
        return {}
    try:
        form = await request.form()
    except HTTPException:  # Starlette's answer to a malformed multipart body
        raise WireError("invalid_request", "The request is malformed: bad form body") from None
    params: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise WireError("invalid_request", "The request is malformed: unexpected file upload")
        params.setdefault(key, value)
    return params


def _json_params(raw: bytes) -> dict[str, str]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise WireError("invalid_request", "The request is malformed: invalid JSON") from None
    if not isinstance(data, dict):
        raise WireError("invalid_request", "The request is malformed: expected a JSON object")
    params: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, str):
            params[key] = value
        elif isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, int | float):
            params[key] = str(value)
        else:
            params[key] = json.dumps(value)
    return params
