"""POST /api/v1/accounts (register), GET and PATCH /api/v1/me, and confirming the e-mail
address (``/api/v1/me/email-verification``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lwa_accounts.core.models import AmazonLink
from lwa_accounts.errors import ValidationFailed
from lwa_accounts.flows import email_verification
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.phases import register_with_password
from lwa_accounts.flows.profile import ProfileChanges, update_profile
from lwa_accounts.flows.sessions import keep_alive
from lwa_accounts.web.api.models import (
    AccountEnvelope,
    EmailCodeRequest,
    ProfileOut,
    ProfilePatch,
    RegisterRequest,
    VerificationSentOut,
    account_json,
    problems,
)
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


@router.patch(
    "/me",
    response_model=ProfileOut,
    responses=problems(400, 401, 403, 409, 413, 415, 422, 429, 501),
    summary="Edit the signed-in account's profile",
    openapi_extra=BEARER_SECURITY,
    description=(
        'Any of `name`, `postal_code` (null or "" removes it) and `email`; every field is '
        "checked first (422 `validation_failed` naming each bad one, unknown fields too) and "
        "nothing is written unless all of it is. A new `email` is not applied yet: it gets a "
        "verification mail (`email_change`), the old address a notice, and it replaces the "
        "old one once confirmed (`POST /api/v1/me/email-verification`). It needs a sign-in "
        "within the last 5 minutes or the `password` (403 `reauthentication_required`); 409 "
        "`email_taken` when another account confirmed that address. Bearer token only."
    ),
)
async def patch_me(body: ProfilePatch, request: Request) -> ProfileOut:
    ctx = request_context(request)
    async with ctx.transaction() as tx:
        caller = await authenticate(tx, request, allow_cookie=False)
    update = await update_profile(
        ctx,
        session=caller.session,
        account=caller.account,
        changes=_changes(body),
        password=body.password,
    )
    link = await _link_of(ctx, caller.account.id)
    sent = update.email_change
    return ProfileOut(
        account=account_json(update.account, link),
        email_change=VerificationSentOut(email=sent.email, expires_at=sent.expires_at)
        if sent
        else None,
    )


def _changes(body: ProfilePatch) -> ProfileChanges:
    given = body.model_fields_set - {"password"}
    removed = {name for name in given & {"name", "email"} if getattr(body, name) is None}
    if removed:
        raise ValidationFailed(errors=dict.fromkeys(sorted(removed), "This cannot be removed."))
    postal = body.postal_code if body.postal_code is not None else ""
    return ProfileChanges(
        name=body.name,
        email=body.email,
        postal_code=postal if "postal_code" in given else None,
    )


async def _link_of(ctx: Context, account_id: str) -> AmazonLink | None:
    async def read(tx: Tx) -> AmazonLink | None:
        return await tx.identities.get_for_account(account_id)

    return await ctx.run_read(read)


@router.post(
    "/me/email-verification",
    response_model=AccountEnvelope,
    responses=problems(400, 401, 409, 410, 413, 415, 422, 429),
    summary="Confirm the e-mail address with the code from the mail",
    openapi_extra=BEARER_SECURITY,
    description=(
        "For people reading the verification mail on another device. The address the mail "
        "was sent to becomes the account's, verified. 400 `wrong_email_code` with "
        "`attempts_left`; 410 `email_link_expired` (none waiting) or `email_code_exhausted` "
        "(too many wrong codes: ask for a new one); 409 `email_taken` when another account "
        "confirmed the address first (nothing changes). Bearer token only."
    ),
)
async def confirm_email(body: EmailCodeRequest, request: Request) -> AccountEnvelope:
    ctx = request_context(request)
    async with ctx.transaction() as tx:
        caller = await authenticate(tx, request, allow_cookie=False)
        verified = await email_verification.verify_code(tx, caller.account, body.code)
        link = await tx.identities.get_for_account(caller.account.id)
    return AccountEnvelope(account=account_json(verified.account, link))


@router.post(
    "/me/email-verification/resend",
    status_code=202,
    response_model=VerificationSentOut,
    responses=problems(401, 409, 422, 429),
    summary="Send the verification mail again",
    openapi_extra=BEARER_SECURITY,
    description=(
        "A new link and code (the earlier ones stop working) to the address waiting for "
        "its confirmation: a requested change, else the account's own. 409 "
        "`email_already_verified`; 422 when the account has no address; 429 when too many "
        "mails were sent. Bearer token only."
    ),
)
async def resend_verification(request: Request) -> VerificationSentOut:
    ctx = request_context(request)
    async with ctx.transaction() as tx:
        caller = await authenticate(tx, request, allow_cookie=False)
        sent = await email_verification.resend(tx, caller.account)
    return VerificationSentOut(email=sent.email, expires_at=sent.expires_at)
