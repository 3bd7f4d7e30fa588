"""Amazon's API endpoints: create/codepair, token, tokeninfo and the customer profile."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lwa_accounts.emulator.state import parse_scopes, state_of
from lwa_accounts.emulator.wire import (
    NO_STORE,
    WireError,
    error_response,
    invalid,
    missing,
    new_request_id,
    read_params,
)

DEVICE_CODE_URN = "urn:ietf:params:oauth:grant-type:device_code"


def base_url(request: Request) -> str:
    """The emulator's own absolute root. Starlette's ``base_url`` is the outermost app's, so
    the mount prefix (``root_path``) is added here."""
    root: str = request.scope.get("root_path", "")
    return str(request.url.replace(path=root.rstrip("/"), query="", fragment=""))


async def create_code_pair(request: Request) -> Response:
    state = state_of(request)
    try:
        params = await read_params(request)
        for name in ("response_type", "client_id", "scope"):
            if not params.get(name):
                raise missing(name)
        if params["response_type"] != "device_code":
            raise invalid("response_type")
        client = state.get_client(params["client_id"])
        if client is None:
            # Amazon's non-standard code for an unknown client here.
            raise invalid("client_id", "InvalidValue")
        scope_data = params.get("scope_data")
        if scope_data is not None:
            try:
                json.loads(scope_data)
            except ValueError:
                raise invalid("scope_data") from None
        scopes = parse_scopes(params["scope"])
        pair = state.create_code_pair(client, scopes, scope_data)
    except WireError as exc:
        return error_response(exc)
    # Amazon's key order (a captured response).
    return JSONResponse(
        {
            "user_code": pair.user_code,
            "device_code": pair.device_code,
            "interval": state.config.interval,
            "verification_uri": base_url(request) + "/code",
            "expires_in": state.config.code_pair_expires_in,
        }
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise WireError("invalid_client", "Client authentication failed", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise WireError("invalid_client", "Client authentication failed", 401)
    # RFC 6749 section 2.3.1: both parts are form-urlencoded inside Basic.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def _client_credentials(request: Request, params: dict[str, str]) -> tuple[str, str | None]:
    basic = _basic_credentials(request)
    form_id, form_secret = params.get("client_id"), params.get("client_secret")
    if basic is not None:
        if (form_id and form_id != basic[0]) or form_secret:
            raise WireError("invalid_request", "The request uses more than one authentication")
        return basic
    if not form_id:
        raise missing("client_id")
    return form_id, form_secret or None


async def token(request: Request) -> Response:
    state = state_of(request)
    try:
        params = await read_params(request)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise missing("grant_type")
        if grant_type == "device_code" or (
            grant_type == DEVICE_CODE_URN and state.config.accept_device_code_urn
        ):
            # Amazon's poll carries device_code and user_code, and no client credentials.
            if not params.get("device_code"):
                raise missing("device_code")
            if state.config.poll_requires_user_code and not params.get("user_code"):
                raise missing("user_code")
            body = state.poll(params["device_code"], params.get("user_code") or None)
        elif grant_type == "authorization_code":
            if not params.get("code"):
                raise missing("code")
            client_id, secret = _client_credentials(request, params)
            body = state.exchange_code(
                params["code"],
                client_id,
                secret,
                params.get("redirect_uri"),
                params.get("code_verifier"),
            )
        elif grant_type == "refresh_token":
            if not params.get("refresh_token"):
                raise missing("refresh_token")
            client_id, secret = _client_credentials(request, params)
            body = state.refresh(params["refresh_token"], client_id, secret)
        else:
            raise WireError(
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server",
            )
    except WireError as exc:
        return error_response(exc, no_store=True)
    return JSONResponse(body, headers=NO_STORE)


async def token_info(request: Request) -> Response:
    request_id = new_request_id()
    access_token = request.query_params.get("access_token")
    try:
        if not access_token:
            raise missing("access_token")
        body = state_of(request).token_info(access_token)
    except WireError as exc:
        return error_response(exc)
    return JSONResponse(body, headers={"x-amzn-RequestId": request_id})


def _bearer(request: Request) -> str | None:
    """The token from the query, `Authorization: Bearer` (any case) or x-amz-access-token."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    amz = request.headers.get("x-amz-access-token", "").strip()
    if amz:
        return amz
    return request.query_params.get("access_token") or None


async def profile(request: Request) -> Response:
    request_id = new_request_id()
    try:
        access_token = _bearer(request)
        if access_token is None:
            raise missing("access_token")
        body = state_of(request).profile(access_token)
    except WireError as exc:
        return error_response(exc, request_id=request_id)
    return JSONResponse(body, headers={"x-amzn-RequestId": request_id})


routes = [
    Route("/auth/o2/create/codepair", create_code_pair, methods=["POST"]),
    Route("/auth/o2/token", token, methods=["POST"]),
    Route("/auth/o2/tokeninfo", token_info, methods=["GET"]),
    Route("/user/profile", profile, methods=["GET"]),
]
