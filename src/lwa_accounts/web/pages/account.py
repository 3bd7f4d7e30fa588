"""/account: profile, active sessions (each with "Sign out"), change password."""

from __future__ import annotations

import contextlib
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.errors import LwaAccountsError, NotFound, ValidationFailed
from lwa_accounts.flows.accounts import (
    Refused,
    finish_password_change,
    list_sessions,
    prepare_password_change,
    revoke_session,
    rotate_session,
)
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.web.auth import Caller, client_info, optional_browser_caller
from lwa_accounts.web.cookies import clear_session_cookie, set_session_cookie
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.pages.amazon import amazon_form_headers
from lwa_accounts.web.services import get_services
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
    async with services.database.transaction() as stores:
        sessions = await list_sessions(stores, caller.account)
        amazon_link = await stores.identities.get_for_account(caller.account.id)
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
    services = get_services(request)
    async with services.database.transaction() as stores:
        caller = await optional_browser_caller(stores, request)
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
    async with services.database.transaction() as stores:
        caller = await optional_browser_caller(stores, request)
    if caller is None:
        return _to_signin("/account")
    if new != confirm:
        return await _account_page(
            request,
            caller,
            status_code=422,
            errors={"confirm_password": "The two new passwords do not match."},
        )
    rotated: SignedIn | None = None
    client = client_info(request)
    try:
        # argon2 (current and new password) outside any transaction, as on /signin.
        prepared = await prepare_password_change(
            services.accounts,
            account=caller.account,
            current_password=current or None,
            new_password=new,
            client=client,
        )
        async with services.database.transaction() as stores:
            outcome = await finish_password_change(
                stores,
                services.accounts,
                prepared,
                session=caller.session,
                account=caller.account,
                client=client,
            )
            if outcome is None:
                # The password was proven again (or set within a recent sign-in): a new
                # session id, as at every sign-in (security.md item 19).
                rotated = await rotate_session(
                    stores,
                    services.accounts,
                    session=caller.session,
                    account=caller.account,
                    client=client,
                    method="password_change",
                )
    except ValidationFailed as failure:
        return await _account_page(request, caller, status_code=422, errors=failure.errors)
    except LwaAccountsError as failure:
        return await _account_page(
            request, caller, status_code=failure.status, error=failure.detail
        )
    if isinstance(outcome, Refused):
        refusal = outcome.error
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
    assert rotated is not None  # the change succeeded
    response = RedirectResponse("/account?done=password-changed", status_code=303)
    set_session_cookie(
        response,
        rotated.token,
        rotated.session.absolute_expires_at,
        services.settings,
        now=services.clock.now(),
    )
    return response


@router.post("/account/sessions/{session_id}/signout")
async def account_end_session(session_id: str, request: Request) -> Response:
    services = get_services(request)
    await read_form(request)
    async with services.database.transaction() as stores:
        caller = await optional_browser_caller(stores, request)
        if caller is None:
            return _to_signin("/account")
        # Already gone (double click, other tab) is fine: the list shows the truth.
        with contextlib.suppress(NotFound):
            await revoke_session(
                stores,
                services.accounts,
                account=caller.account,
                session_id=session_id,
                client=client_info(request),
            )
    if session_id == caller.session.id:
        response = RedirectResponse("/signin?signed_out=1", status_code=303)
        clear_session_cookie(response, services.settings)
        return response
    return RedirectResponse("/account?done=session-ended", status_code=303)
