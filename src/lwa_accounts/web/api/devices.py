"""The device API of issue 6: TVs sign in without typing a password.

- ``POST /api/v1/amazon/device-authorizations`` and ``.../poll`` (``{"authorization_id"}``):
  server-assisted code-based linking (the server runs Amazon's device flow; see
  flows/tv_amazon.py).
- ``POST /api/v1/device/authorize`` and ``POST /api/v1/device/token``: our own RFC 8628
  shaped device sign-in, approved on /activate (flows/devices.py). The token endpoint
  answers RFC 8628 error bodies ``{"error", "error_description"}``, not problem+json.
- ``POST /api/v1/flows/handoff`` (``{"flow_id"}``): a "finish on your phone" code for a
  pending device flow (devices that ran Amazon's flow themselves and got ``link_required``
  or ``registration_required`` from ``POST /api/v1/sessions/amazon``).

Secret handles travel in JSON bodies, never in paths (security.md item 1); the retired
``.../device-authorizations/{id}/poll`` and ``/flows/{id}/handoff`` paths answer 410
``moved`` (web/api/retired.py).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from lwa_accounts.core import device_grant as dg
from lwa_accounts.errors import AmazonError, FlowExpired
from lwa_accounts.flows import tv_amazon
from lwa_accounts.flows.amazon import Device, LinkRequired, SignedInWithAmazon, get_flow
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.devices import (
    TokenInvalid,
    authorize_device,
    guard_device_start,
    poll_device_token,
)
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.flows.tv_handoff import HandOffOffer, activate_url, offer_handoff
from lwa_accounts.interfaces import AmazonDeviceClient
from lwa_accounts.web.amazon_edge import amazon_client, verify_token
from lwa_accounts.web.api.amazon import flow_json, signed_in_json
from lwa_accounts.web.api.amazon_models import AmazonSignedInOut, FlowOut
from lwa_accounts.web.api.models import (
    AuthorizationPollRequest,
    FlowRequest,
    Strict,
    problems,
)
from lwa_accounts.web.qr import qr_svg
from lwa_accounts.web.services import get_services, request_context

router = APIRouter(prefix="/api/v1", tags=["devices"])

DeviceName = Annotated[str, Field(min_length=1, max_length=100)]
DEVICE_CODE_MAX = 256
TOKEN_BODY_MAX = 4096


# ---- models -------------------------------------------------------------------------------


class DeviceNameRequest(Strict):
    device_name: DeviceName | None = Field(
        default=None, description="Shown on /activate and on the account page."
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"device_name": "Living-room TV"}]}
    )


class AmazonAuthorizationOut(BaseModel):
    id: str = Field(description="The device's secret handle for polling; keep it private.")
    user_code: str = Field(description="Amazon's code, for the person to type at Amazon.")
    verification_uri: str = Field(description="Where to type it (Amazon's /code page).")
    expires_in: int
    interval: int = Field(description="Poll at most this often (seconds).")
    qr_svg: str = Field(description="A QR code of verification_uri, as an SVG element.")


class DeviceAuthorizationOut(BaseModel):
    device_code: str
    user_code: str = Field(description="Shown as XXXX-XXXX; entry ignores case and dashes.")
    verification_uri: str
    verification_uri_complete: str = Field(
        description="Pre-fills the code on /activate; the person still confirms."
    )
    expires_in: int
    interval: int
    qr_svg: str = Field(description="A QR code of verification_uri_complete (SVG).")


class HandOffOut(BaseModel):
    code: str = Field(description="The code to type on the phone at /activate.")
    url: str
    qr_svg: str
    expires_at: datetime


class PendingResult(BaseModel):
    result: Literal["pending"] = "pending"


class NeedsPhoneResult(BaseModel):
    result: Literal["link_required", "registration_required"]
    flow: FlowOut
    handoff: HandOffOut


# ---- helpers ------------------------------------------------------------------------------


def _amazon(request: Request) -> AmazonDeviceClient:
    """The app's one pooled Amazon client (it holds the device client id too)."""
    return amazon_client(get_services(request))


async def _signed_in_response(tx: Tx, outcome: SignedInWithAmazon) -> JSONResponse:
    body = await signed_in_json(tx, outcome)
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store"}


def _handoff_json(offer: HandOffOffer) -> HandOffOut:
    return HandOffOut(
        code=offer.display_code,
        url=offer.url,
        qr_svg=qr_svg(offer.url),
        expires_at=offer.expires_at,
    )


# ---- server-assisted code-based linking ------------------------------------------------------


@router.post(
    "/amazon/device-authorizations",
    status_code=201,
    response_model=AmazonAuthorizationOut,
    responses=problems(413, 422, 429, 502, 503),
    summary="Sign in with Amazon on a TV: get Amazon's code (the server runs Amazon's flow)",
    description=(
        "The server asks Amazon for a code pair with the device client id and keeps Amazon's "
        "device code to itself. Show `user_code` and `verification_uri` (and the QR code), "
        'then poll `POST .../poll` `{"authorization_id": id}` every `interval` seconds.'
    ),
)
async def create_amazon_authorization(
    request: Request, body: DeviceNameRequest | None = None
) -> JSONResponse:
    ctx = request_context(request)
    await guard_device_start(ctx)
    pair = await _amazon(request).create_code_pair()
    async with ctx.transaction() as tx:
        started = await tv_amazon.register_authorization(
            tx, pair, device_name=body.device_name if body else None
        )
    auth = started.authorization
    out = AmazonAuthorizationOut(
        id=started.id,
        user_code=auth.user_code,
        verification_uri=auth.verification_uri,
        expires_in=int((auth.expires_at - auth.created_at).total_seconds()),
        interval=auth.interval,
        qr_svg=qr_svg(auth.verification_uri),
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers=_NO_STORE)


@router.post(
    "/amazon/device-authorizations/poll",
    response_model=AmazonSignedInOut | PendingResult | NeedsPhoneResult,
    responses={
        201: {"model": AmazonSignedInOut, "description": "Signed in (as POST /sessions/amazon)."},
        **problems(400, 401, 403, 404, 410, 413, 422, 429, 502, 503),
    },
    summary="Poll a server-assisted Amazon sign-in",
    description=(
        'Body `{"authorization_id"}`. 200 `{"result": "pending"}`; 429 `slow_down` with '
        "`interval` when polled faster than `interval`; 201 signed in; 200 `link_required` / "
        "`registration_required` with a `handoff` to finish on a phone; 410 `expired`: ask "
        "for a new code; 403 `access_denied`."
    ),
)
async def poll_amazon_authorization(body: AuthorizationPollRequest, request: Request) -> Response:
    services = get_services(request)
    ctx = request_context(request)
    async with ctx.transaction() as tx:
        step = await tv_amazon.begin_poll(tx, body.authorization_id)
    if isinstance(step, tv_amazon.StillPending):
        return _pending()
    amazon = _amazon(request)
    auth = step.authorization
    assert auth.device_code is not None  # pending authorizations keep it
    reply = await amazon.poll_device_token(device_code=auth.device_code, user_code=auth.user_code)
    async with ctx.transaction() as tx:
        recorded = await tv_amazon.record_reply(tx, auth, reply)
    if isinstance(recorded, tv_amazon.StillPending):
        return _pending()
    try:
        profile = await verify_token(ctx, services, recorded.access_token)
    except AmazonError:
        # Amazon's tokens are spent either way: the device needs a new code.
        async with ctx.transaction() as tx:
            await tv_amazon.abandon(tx, auth)
        raise
    async with ctx.transaction() as tx:
        outcome = await tv_amazon.finish_sign_in(tx, auth, profile)
        if isinstance(outcome, SignedInWithAmazon):
            return await _signed_in_response(tx, outcome)
        pending = outcome.outcome
        needs_phone = NeedsPhoneResult(
            result="link_required"
            if isinstance(pending, LinkRequired)
            else "registration_required",
            flow=await flow_json(tx, pending.flow_id, pending.flow),
            handoff=_handoff_json(outcome.handoff),
        )
        return JSONResponse(needs_phone.model_dump(mode="json"), headers=_NO_STORE)


def _pending() -> JSONResponse:
    return JSONResponse(PendingResult().model_dump(), headers=_NO_STORE)


# ---- our own device sign-in (RFC 8628 shaped) ------------------------------------------------


@router.post(
    "/device/authorize",
    status_code=201,
    response_model=DeviceAuthorizationOut,
    responses=problems(413, 422, 429),
    summary="Sign in with your phone: get a device code and a user code",
    description=(
        "Show `user_code` (and the QR code of `verification_uri_complete`); the person opens "
        "/activate on a phone, signs in and confirms this device. Poll `POST /device/token`."
    ),
)
async def device_authorize(request: Request, body: DeviceNameRequest | None = None) -> JSONResponse:
    services = get_services(request)
    ctx = request_context(request)
    await guard_device_start(ctx)
    async with ctx.transaction() as tx:
        issued = await authorize_device(tx, device_name=body.device_name if body else None)
    shown = dg.display_user_code(issued.user_code)
    complete = activate_url(services.settings, shown)
    out = DeviceAuthorizationOut(
        device_code=issued.device_code,
        user_code=shown,
        verification_uri=activate_url(services.settings),
        verification_uri_complete=complete,
        expires_in=issued.expires_in,
        interval=issued.interval,
        qr_svg=qr_svg(complete),
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers=_NO_STORE)


_TOKEN_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["device_code"],
    "properties": {"device_code": {"type": "string", "maxLength": DEVICE_CODE_MAX}},
}
# JSON, or form-encoded as RFC 8628 clients send it.
_TOKEN_REQUEST_CONTENT: dict[str, Any] = {
    "application/json": {"schema": _TOKEN_REQUEST_SCHEMA},
    "application/x-www-form-urlencoded": {"schema": _TOKEN_REQUEST_SCHEMA},
}


def _oauth_error(error: str, description: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "error_description": description, **extra}
    return JSONResponse(body, status_code=400, headers=_NO_STORE)


async def _device_code_from(request: Request) -> str | None:
    """``device_code`` from a JSON body or (as RFC 8628 clients send) a form body."""
    raw = await request.body()
    if len(raw) > TOKEN_BODY_MAX:
        return None
    content_type = request.headers.get("content-type", "")
    value: object = None
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form(max_files=0, max_fields=10)
        value = form.get("device_code")
    else:
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        value = data.get("device_code") if isinstance(data, dict) else None
    if not isinstance(value, str) or not 0 < len(value) <= DEVICE_CODE_MAX:
        return None
    # Our device codes are URL-safe base64; anything else cannot be one.
    if not value.isascii() or not value.replace("-", "").replace("_", "").isalnum():
        return None
    return value


@router.post(
    "/device/token",
    responses={
        200: {"model": AmazonSignedInOut, "description": "Approved: a device session."},
        400: {
            "description": (
                "RFC 8628 error body: `authorization_pending`, `slow_down` (with `interval`), "
                "`expired_token`, `access_denied`, `invalid_grant` (unknown or used code), "
                "`invalid_request`."
            ),
            "content": {
                "application/json": {
                    "example": {
                        "error": "authorization_pending",
                        "error_description": "The person has not approved this device yet.",
                    }
                }
            },
        },
    },
    summary="Poll for the device session (RFC 8628 shaped)",
    openapi_extra={"requestBody": {"required": True, "content": _TOKEN_REQUEST_CONTENT}},
)
async def device_token(request: Request) -> Response:
    device_code = await _device_code_from(request)
    if device_code is None:
        return _oauth_error("invalid_request", 'Send {"device_code": "..."}.')
    async with request_context(request).transaction() as tx:
        outcome = await poll_device_token(tx, device_code=device_code)
        if isinstance(outcome, SignedIn):
            body = await signed_in_json(tx, SignedInWithAmazon(created=False, signed_in=outcome))
            # RFC 8628 (as RFC 6749 5.1): the token response is a 200.
            return JSONResponse(body.model_dump(mode="json"), headers=_NO_STORE)
    match outcome:
        case dg.AwaitingApproval():
            return _oauth_error(
                "authorization_pending", "The person has not approved this device yet."
            )
        case dg.SlowDown(interval):
            return _oauth_error(
                "slow_down", f"Poll at most every {interval} seconds.", interval=interval
            )
        case dg.Expired():
            return _oauth_error("expired_token", "The code expired. Ask for a new one.")
        case dg.Denied():
            return _oauth_error("access_denied", "The sign-in was declined.")
        case TokenInvalid():
            return _oauth_error("invalid_grant", "Unknown or already used device code.")
    raise AssertionError(f"unhandled token outcome {outcome!r}")  # pragma: no cover


# ---- hand-off of a pending device flow -----------------------------------------------------------


@router.post(
    "/flows/handoff",
    status_code=201,
    response_model=HandOffOut,
    responses=problems(400, 404, 410, 413, 422),
    summary="Finish a pending device flow on a phone: get a hand-off code",
    description=(
        'Body `{"flow_id"}`. For a `link_required` or `registration_required` flow a device '
        "started: the person types the code at /activate on a phone and gives the password "
        "or the registration there; the device keeps polling `POST /api/v1/flows/poll` for "
        "its session."
    ),
)
async def create_handoff(body: FlowRequest, request: Request) -> JSONResponse:
    async with request_context(request).transaction() as tx:
        flow = await get_flow(tx, body.flow_id, Device())
        if flow.session_kind != "device":
            raise FlowExpired("Only device sign-ins can be finished on a phone.")
        offer = await offer_handoff(tx, flow_id=body.flow_id, flow=flow)
    return JSONResponse(
        _handoff_json(offer).model_dump(mode="json"), status_code=201, headers=_NO_STORE
    )
