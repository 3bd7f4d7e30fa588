"""/account: profile, active sessions (each with "Sign out"), change password."""

from __future__ import annotations

import contextlib
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.errors import (
    InvalidCredentials,
    LwaAccountsError,
    NotFound,
    TooManyAttempts,
    ValidationFailed,
)
from lwa_accounts.flows.accounts import list_sessions, revoke_session
from lwa_accounts.flows.credentials import (
    finish_password_change,
    prepare_password_change,
    rotate_session,
)
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.web.auth import Caller, optional_browser_caller
from lwa_accounts.web.cookies import clear_session_cookie, set_session_cookie
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.pages.amazon_common import amazon_form_headers
from lwa_accounts.web.services import get_services, request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

# Messages after a redirect (Post/Redirect/Get); only these keys are ever shown.
NOTICES = {
    "password-changed": "Your password was changed. Your other sessions were signed out.",
    "session-ended": "That session was signed out.",
}


def _to_signin(path: str) -> Response:
    return RedirectResponse(f"/signin?next={quote(path, safe='/')}", status_code=303)


async def _account_page(
    request: Request,
    caller: Caller,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    services = get_services(request)
    async with request_context(request).transaction() as tx:
        sessions = await list_sessions(tx, caller.account)
        amazon_link = await tx.identities.get_for_account(caller.account.id)
    return render(
        request,
        "account.html",
        {
            "account": caller.account,
            "current_session": caller.session,
            "sessions": sessions,
            "amazon_link": amazon_link,
            "notice": NOTICES.get(request.query_params.get("done", "")),
            "errors": errors or {},
            "error": error,
        },
        status_code=status_code,
        # Its "Link Amazon account" form leads to Amazon's sign-in page.
        headers=amazon_form_headers(services) | (headers or {}),
    )


@router.get("/account")
async def account_page(request: Request) -> Response:
    async with request_context(request).transaction() as tx:
        caller = await optional_browser_caller(tx, request)
    if caller is None:
        return _to_signin("/account")
    return await _account_page(request, caller)


@router.post("/account/password")
async def account_change_password(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    current, new, confirm = (
        form.get("current_password", 1100),
        form.get("new_password", 1100),
        form.get("confirm_password", 1100),
    )
    ctx = request_context(request)
    async with ctx.transaction() as tx:
        caller = await optional_browser_caller(tx, request)
    if caller is None:
        return _to_signin("/account")
    if new != confirm:
        return await _account_page(
            request,
            caller,
            status_code=422,
            errors={"confirm_password": "The two new passwords do not match."},
        )
    rotated: SignedIn
    try:
        # argon2 (current and new password) outside any transaction, as on /signin.
        prepared = await prepare_password_change(
            ctx, account=caller.account, current_password=current or None, new_password=new
        )
        async with ctx.transaction() as tx:
            await finish_password_change(
                tx, prepared, session=caller.session, account=caller.account
            )
            # The password was proven again (or set within a recent sign-in): a new
            # session id, as at every sign-in (security.md item 19).
            rotated = await rotate_session(
                tx, session=caller.session, account=caller.account, method="password_change"
            )
    except ValidationFailed as failure:
        return await _account_page(request, caller, status_code=422, errors=failure.errors)
    except (InvalidCredentials, TooManyAttempts) as refusal:
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
        message = (
            "Your current password is incorrect."
            if refusal.code == "invalid_credentials"
            else refusal.detail
        )
        return await _account_page(
            request,
            caller,
            status_code=refusal.status,
            errors={"current_password": message},
            headers=headers,
        )
    except LwaAccountsError as failure:
        return await _account_page(
            request, caller, status_code=failure.status, error=failure.detail
        )
    response = RedirectResponse("/account?done=password-changed", status_code=303)
    set_session_cookie(response, rotated, services.settings, now=services.clock.now())
    return response


@router.post("/account/sessions/{session_id}/signout")
async def account_end_session(session_id: str, request: Request) -> Response:
    services = get_services(request)
    await read_form(request)
    async with request_context(request).transaction() as tx:
        caller = await optional_browser_caller(tx, request)
        if caller is None:
            return _to_signin("/account")
        # Already gone (double click, other tab) is fine: the list shows the truth.
        with contextlib.suppress(NotFound):
            await revoke_session(tx, account=caller.account, session_id=session_id)
    if session_id == caller.session.id:
        response = RedirectResponse("/signin?signed_out=1", status_code=303)
        clear_session_cookie(response, services.settings)
        return response
    return RedirectResponse("/account?done=session-ended", status_code=303)
