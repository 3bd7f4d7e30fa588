"""POST /api/v1/accounts (register) and GET /api/v1/me."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lwa_accounts.core.models import AmazonLink
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.phases import register_with_password
from lwa_accounts.flows.sessions import keep_alive
from lwa_accounts.web.api.models import AccountEnvelope, RegisterRequest, account_json, problems
from lwa_accounts.web.auth import BEARER_SECURITY, Caller, authenticate
from lwa_accounts.web.services import request_context

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountEnvelope,
    responses=problems(400, 409, 413, 422, 429),
    summary="Register a password account",
    description=(
        "Creates an account. Usernames are 3-32 of `a-z 0-9 . _ -` (compared "
        "case-insensitively); passwords 8-1024 characters and not a common one. "
        "409 `username_taken` / `email_taken`; 422 `validation_failed` with `errors` per field."
    ),
)
async def create_account(body: RegisterRequest, request: Request) -> AccountEnvelope:
    # argon2 before the transaction: no connection or write lock is held while hashing.
    account = await register_with_password(
        request_context(request),
        username=body.username,
        email=body.email,
        name=body.name,
        password=body.password,
    )
    return AccountEnvelope(account=account_json(account))


@router.get(
    "/me",
    response_model=AccountEnvelope,
    responses=problems(401),
    summary="The signed-in account",
    openapi_extra=BEARER_SECURITY,
    description="Bearer token (devices) or the browser's session cookie.",
)
async def me(request: Request) -> AccountEnvelope:
    # Read-only: never waits behind a sign-in for SQLite's write lock; the idle expiry is
    # slid afterwards, only when due.
    ctx = request_context(request)

    async def read(tx: Tx) -> tuple[Caller, AmazonLink | None]:
        caller = await authenticate(tx, request, allow_cookie=True, touch=False)
        return caller, await tx.identities.get_for_account(caller.account.id)

    caller, link = await ctx.run_read(read)
    await keep_alive(ctx, caller.session)
    return AccountEnvelope(account=account_json(caller.account, link))
