"""Password sign-in for devices and session management, under /api/v1/sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from fastapi import APIRouter, Request, Response

from lwa_accounts.core.models import Session
from lwa_accounts.flows.accounts import list_sessions, revoke_session
from lwa_accounts.flows.accounts import sign_out as sign_out_flow
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.phases import password_sign_in
from lwa_accounts.flows.sessions import keep_alive
from lwa_accounts.web.api.models import (
    SessionList,
    SessionTokenOut,
    SignedInOut,
    SignInRequest,
    account_json,
    problems,
    session_json,
)
from lwa_accounts.web.auth import BEARER_SECURITY, Caller, authenticate
from lwa_accounts.web.services import request_context

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


@router.post(
    "",
    status_code=201,
    response_model=SignedInOut,
    responses=problems(401, 403, 413, 422, 429),
    summary="Sign in with username (or email) and password",
    description=(
        "Returns a device session: a bearer token of 256 random bits, and a `device_token` "
        "to send with later sign-ins (a known device keeps a budget of its own, so guesses "
        "from elsewhere cannot lock it out). Wrong credentials: 401 `invalid_credentials` "
        "with `attempts_left`; too many attempts for the account or from this address (or "
        "this device): 429 `too_many_attempts` with `Retry-After`, `retry_after` and the "
        "wait in words in `detail`."
    ),
)
async def create_session(body: SignInRequest, request: Request) -> SignedInOut:
    ctx = request_context(request)
    if body.device_token is not None:
        ctx = replace(ctx, client=replace(ctx.client, device_proof=body.device_token))
    signed_in = await password_sign_in(
        ctx,
        login=body.username,
        password=body.password,
        kind="device",
        device_name=body.device_name,
    )
    # Only a read: no SQLite write lock for rendering.
    link = await ctx.run_read(lambda tx: tx.identities.get_for_account(signed_in.account.id))
    return SignedInOut(
        session=SessionTokenOut(token=signed_in.token, expires_at=signed_in.session.expires_at),
        account=account_json(signed_in.account, link),
        device_token=signed_in.device_proof,
    )


@router.get(
    "",
    response_model=SessionList,
    responses=problems(401),
    summary="The account's active sessions (browsers and devices)",
    openapi_extra=BEARER_SECURITY,
)
async def get_sessions(request: Request) -> SessionList:
    ctx = request_context(request)

    async def read(tx: Tx) -> tuple[Caller, Sequence[Session]]:
        caller = await authenticate(tx, request, allow_cookie=True, touch=False)
        return caller, await list_sessions(tx, caller.account)

    caller, sessions = await ctx.run_read(read)
    await keep_alive(ctx, caller.session)
    return SessionList(
        sessions=[session_json(s, current_session_id=caller.session.id) for s in sessions]
    )


@router.delete(
    "/current",
    status_code=204,
    responses=problems(401),
    summary="Sign out this device",
    openapi_extra=BEARER_SECURITY,
)
async def delete_current_session(request: Request) -> Response:
    async with request_context(request).transaction() as tx:
        caller = await authenticate(tx, request, allow_cookie=False)
        await sign_out_flow(tx, caller.session)
    return Response(status_code=204)


@router.delete(
    "/{session_id}",
    status_code=204,
    responses=problems(401, 404),
    summary="Sign out one of the account's sessions",
    openapi_extra=BEARER_SECURITY,
)
async def delete_session(session_id: str, request: Request) -> Response:
    async with request_context(request).transaction() as tx:
        caller = await authenticate(tx, request, allow_cookie=False)
        await revoke_session(tx, account=caller.account, session_id=session_id)
    return Response(status_code=204)
