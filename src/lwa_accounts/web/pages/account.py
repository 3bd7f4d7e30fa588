"""/account: the profile (name and postal code, with "use this" from what Amazon last
sent), active sessions (each with "Sign out"), change password. The e-mail address and its
verification are ``account_email.py``; the Amazon section ``account_amazon.py``."""

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
from lwa_accounts.flows.email_verification import pending_change
from lwa_accounts.flows.profile import (
    AmazonField,
    ProfileChanges,
    apply_changes,
    check_changes,
    use_amazon_value,
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
    "profile-saved": "Your profile was saved.",
    "email-sent": "We sent a link and a code to the address. It changes once you confirm it.",
    "email-verified": "Your e-mail address is confirmed.",
    "email-kept": "Nothing to confirm: your address stays as it is.",
    "email-cancelled": "The change of address was cancelled.",
}
AMAZON_FIELDS: dict[str, AmazonField] = {"name": "name", "postal_code": "postal_code"}


def _to_signin(path: str) -> Response:
    return RedirectResponse(f"/signin?next={quote(path, safe='/')}", status_code=303)


async def render_account(
    request: Request,
    caller: Caller,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """/account as it is now; ``errors`` per field, ``form``: what was typed (shown again)."""
    services = get_services(request)
    async with request_context(request).transaction() as tx:
        account = await tx.accounts.get(caller.account.id) or caller.account
        sessions = await list_sessions(tx, account)
        amazon_link = await tx.identities.get_for_account(account.id)
        pending = await pending_change(tx, account)
    return render(
        request,
        "account.html",
        {
            "account": account,
            "current_session": caller.session,
            "sessions": sessions,
            "amazon_link": amazon_link,
            "pending": pending,
            "form": form or {},
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
    return await render_account(request, caller)


@router.post("/account/profile")
async def account_save_profile(request: Request) -> Response:
    form = await read_form(request)
    typed = {"name": form.get("name", 400), "postal_code": form.get("postal_code", 200)}
    ctx = request_context(request)
    async with ctx.transaction() as tx:
        caller = await optional_browser_caller(tx, request)
    if caller is None:
        return _to_signin("/account")
    try:
        checked = check_changes(ProfileChanges(**typed))
        async with ctx.transaction() as tx:
            await apply_changes(tx, checked, session=caller.session, account=caller.account)
    except ValidationFailed as failure:
        return await render_account(
            request, caller, status_code=422, errors=failure.errors, form=typed
        )
    except LwaAccountsError as failure:  # e.g. a kit table without a postal code column
        return await render_account(
            request, caller, status_code=failure.status, error=failure.detail, form=typed
        )
    return RedirectResponse("/account?done=profile-saved", status_code=303)


@router.post("/account/profile/use-amazon")
async def account_use_amazon_value(request: Request) -> Response:
    """ "Use this": copy one value Amazon last sent (read from the link, not the form)."""
    form = await read_form(request)
    field = AMAZON_FIELDS.get(form.get("field", 20))
    ctx = request_context(request)
    async with ctx.transaction() as tx:
        caller = await optional_browser_caller(tx, request)
    if caller is None:
        return _to_signin("/account")
    if field is None:
        return await render_account(request, caller, status_code=422, error="Unknown field.")
    try:
        async with ctx.transaction() as tx:
            await use_amazon_value(tx, caller.account, field)
    except LwaAccountsError as failure:
        return await render_account(
            request, caller, status_code=failure.status, error=failure.detail
        )
    return RedirectResponse("/account?done=profile-saved", status_code=303)


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
        return await render_account(
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
        return await render_account(request, caller, status_code=422, errors=failure.errors)
    except (InvalidCredentials, TooManyAttempts) as refusal:
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
        message = (
            "Your current password is incorrect."
            if refusal.code == "invalid_credentials"
            else refusal.detail
        )
        return await render_account(
            request,
            caller,
            status_code=refusal.status,
            errors={"current_password": message},
            headers=headers,
        )
    except LwaAccountsError as failure:
        return await render_account(
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
