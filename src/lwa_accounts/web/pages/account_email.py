"""The e-mail address: /verify-email (the link from the mail) and /account's forms to
change the address, type the code, send the mail again or cancel a change.

``GET /verify-email?token=`` only shows what the link confirms, with a button: mail
scanners and link previews fetch links, and must not spend them. ``POST /verify-email``
spends it. A refused link gets a page that says why (not valid, expired, used, for
another account, too many wrong codes, the address confirmed by another account first)
and offers a new one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.errors import (
    EmailLinkForAnotherAccount,
    EmailLinkRefused,
    EmailTaken,
    InvalidCredentials,
    LwaAccountsError,
    ReauthenticationRequired,
    ServiceUnavailable,
    TooManyAttempts,
    ValidationFailed,
)
from lwa_accounts.flows import email_verification
from lwa_accounts.flows.context import Context
from lwa_accounts.flows.phases import reauthenticate_browser
from lwa_accounts.flows.profile import (
    ProfileChanges,
    apply_changes,
    asks_new_email,
    check_changes,
)
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.web.auth import Caller, optional_browser_caller
from lwa_accounts.web.cookies import set_session_cookie
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.pages.account import render_account
from lwa_accounts.web.services import get_services, request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

TOKEN_MAX = 1000  # a signed token is about 150 characters; anything longer is not one


def _done(key: str, rotated: SignedIn | None = None, *, request: Request) -> Response:
    response = RedirectResponse(f"/account?done={key}", status_code=303)
    if rotated is not None:
        services = get_services(request)
        set_session_cookie(response, rotated, services.settings, now=services.clock.now())
    return response


def _to_signin() -> Response:
    return RedirectResponse("/signin?next=/account", status_code=303)


async def _caller(ctx: Context, request: Request) -> Caller | None:
    async with ctx.transaction() as tx:
        return await optional_browser_caller(tx, request)


def _refused(request: Request, error: LwaAccountsError, caller: Caller | None) -> Response:
    return render(
        request,
        "email_link_refused.html",
        {
            "title": error.title,
            "detail": error.detail,
            "code": error.code,
            "signed_in": caller.account if caller else None,
            "other_account": isinstance(error, EmailLinkForAnotherAccount),
        },
        status_code=error.status,
    )


# ---- the link from the mail -------------------------------------------------------------


@router.get("/verify-email")
async def verify_email_page(request: Request) -> Response:
    token = request.query_params.get("token", "")[:TOKEN_MAX]
    ctx = request_context(request)
    caller: Caller | None = None
    try:
        async with ctx.transaction() as tx:
            caller = await optional_browser_caller(tx, request)
            preview = await email_verification.preview_link(
                tx, token, signed_in=caller.account if caller else None
            )
    except EmailLinkRefused as refused:
        return _refused(request, refused, caller)
    return render(
        request,
        "verify_email.html",
        {
            "token": token,
            "address": preview.proof.email,
            "username": preview.account.username,
            "held_elsewhere": preview.held_elsewhere,
            "signed_in": caller is not None,
        },
    )


@router.post("/verify-email")
async def verify_email_submit(request: Request) -> Response:
    form = await read_form(request)
    token = form.get("token", TOKEN_MAX)
    ctx = request_context(request)
    caller: Caller | None = None
    try:
        async with ctx.transaction() as tx:
            caller = await optional_browser_caller(tx, request)
            await email_verification.verify_link(
                tx, token, signed_in=caller.account if caller else None
            )
    except (EmailLinkRefused, EmailTaken) as refused:
        return _refused(request, refused, caller)
    if caller is not None:
        return _done("email-verified", request=request)
    return RedirectResponse("/verify-email/done", status_code=303)


@router.get("/verify-email/done")
async def verify_email_done(request: Request) -> Response:
    caller = await _caller(request_context(request), request)
    return render(request, "verify_email_done.html", {"signed_in": caller is not None})


# ---- /account's forms ---------------------------------------------------------------------


@router.post("/account/email")
async def account_change_email(request: Request) -> Response:
    """Ask for a new address: a recent sign-in, or the password now (a new session for
    it, as every re-authentication of a browser gets: security.md 19)."""
    form = await read_form(request)
    typed, password = form.get("email", 400), form.get("password", 1100)
    ctx = request_context(request)
    caller = await _caller(ctx, request)
    if caller is None:
        return _to_signin()
    shown = {"email": typed[:300]}
    try:
        checked = check_changes(ProfileChanges(email=typed))
    except ValidationFailed as failure:
        return await render_account(
            request, caller, status_code=422, errors=failure.errors, form=shown
        )
    rotated: SignedIn | None = None
    session = caller.session
    if password and caller.account.has_password and asks_new_email(caller.account, checked):
        try:
            rotated = await reauthenticate_browser(
                ctx, session=caller.session, account=caller.account, password=password
            )
        except (InvalidCredentials, TooManyAttempts) as refused:
            message = (
                refused.detail
                if isinstance(refused, TooManyAttempts)
                else "The password is incorrect."
            )
            headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
            return await render_account(
                request,
                caller,
                status_code=refused.status,
                errors={"email_password": message},
                form=shown,
                headers=headers,
            )
        session = rotated.session
    try:
        async with ctx.transaction() as tx:
            update = await apply_changes(tx, checked, session=session, account=caller.account)
    except ServiceUnavailable:
        raise
    except LwaAccountsError as failure:
        key = "email_password" if isinstance(failure, ReauthenticationRequired) else "email"
        response = await render_account(
            request,
            caller if rotated is None else Caller(rotated.session, rotated.account, True),
            status_code=failure.status,
            errors={key: failure.detail},
            form=shown,
        )
        if rotated is not None:
            services = get_services(request)
            set_session_cookie(response, rotated, services.settings, now=services.clock.now())
        return response
    return _done("email-sent" if update.email_change else "email-kept", rotated, request=request)


@router.post("/account/email/code")
async def account_email_code(request: Request) -> Response:
    form = await read_form(request)
    typed = form.get("code", 40)
    ctx = request_context(request)
    caller = await _caller(ctx, request)
    if caller is None:
        return _to_signin()
    try:
        async with ctx.transaction() as tx:
            await email_verification.verify_code(tx, caller.account, typed)
    except (EmailLinkRefused, EmailTaken) as refused:
        left = refused.extra.get("attempts_left")
        detail = refused.detail + (f" {left} tries left." if left else "")
        return await render_account(
            request, caller, status_code=refused.status, errors={"code": detail}
        )
    return _done("email-verified", request=request)


@router.post("/account/email/resend")
async def account_email_resend(request: Request) -> Response:
    await read_form(request)
    ctx = request_context(request)
    caller = await _caller(ctx, request)
    if caller is None:
        return _to_signin()
    try:
        async with ctx.transaction() as tx:
            await email_verification.resend(tx, caller.account)
    except ServiceUnavailable:
        raise
    except LwaAccountsError as refused:
        headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
        return await render_account(
            request, caller, status_code=refused.status, error=refused.detail, headers=headers
        )
    return _done("email-sent", request=request)


@router.post("/account/email/cancel")
async def account_email_cancel(request: Request) -> Response:
    await read_form(request)
    ctx = request_context(request)
    caller = await _caller(ctx, request)
    if caller is None:
        return _to_signin()
    async with ctx.transaction() as tx:
        cancelled = await email_verification.cancel_change(tx, caller.account)
    return _done("email-cancelled" if cancelled else "email-kept", request=request)
