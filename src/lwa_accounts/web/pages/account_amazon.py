"""The Amazon section of /account: link (a CSRF-checked POST starts the trip to Amazon)
and unlink. Both need a recent sign-in or the password again; a browser that gives the
password gets a new session for it (no fixation, security.md 19)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.core.models import Session
from lwa_accounts.errors import (
    LastSignInMethod,
    LwaAccountsError,
    ReauthenticationRequired,
    ServiceUnavailable,
)
from lwa_accounts.flows import amazon
from lwa_accounts.flows.context import Context
from lwa_accounts.flows.credentials import recently_authenticated
from lwa_accounts.flows.phases import reauthenticate_browser
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.web.auth import Caller, optional_browser_caller
from lwa_accounts.web.cookies import set_session_cookie
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.pages.amazon_common import begin_attach, to_account
from lwa_accounts.web.services import Services, get_services, request_context

router = APIRouter(include_in_schema=False)


async def _confirm_recent(
    ctx: Context, services: Services, caller: Caller, password: str
) -> Response | SignedIn | None:
    """None when the session may change sign-in methods now (recent sign-in); after the
    password is given again, the browser's new session (the old one ended: no fixation),
    to be set as the cookie of the response; else the redirect that says why not."""
    if not password:
        if recently_authenticated(caller.session, services.deps):
            return None
        return to_account(amazon_error="reauth")
    try:
        # argon2 outside any transaction, as on /signin.
        return await reauthenticate_browser(
            ctx, session=caller.session, account=caller.account, password=password
        )
    except ServiceUnavailable:
        raise
    except LwaAccountsError as refused:
        code = "too-many" if refused.code == "too_many_attempts" else "wrong-password"
        return to_account(amazon_error=code)


def _with_session(response: Response, services: Services, signed_in: SignedIn | None) -> Response:
    if signed_in is not None:
        set_session_cookie(response, signed_in, services.settings, now=services.clock.now())
    return response


@dataclass(frozen=True, slots=True)
class _Confirmed:
    """A signed-in browser allowed to change its sign-in methods now."""

    caller: Caller
    session: Session  # the current one: new if the password was just given again
    rotated: SignedIn | None  # that new session, for the response's cookie


async def _confirmed(request: Request, ctx: Context, services: Services) -> _Confirmed | Response:
    form = await read_form(request)
    async with ctx.transaction() as tx:
        caller = await optional_browser_caller(tx, request)
    if caller is None:
        return RedirectResponse("/signin?next=/account", status_code=303)
    confirmed = await _confirm_recent(ctx, services, caller, form.get("password", 1100))
    if isinstance(confirmed, Response):
        return confirmed
    session = confirmed.session if confirmed is not None else caller.session
    return _Confirmed(caller=caller, session=session, rotated=confirmed)


@router.post("/account/amazon/link")
async def account_link(request: Request) -> Response:
    services = get_services(request)
    confirmed = await _confirmed(request, request_context(request), services)
    if isinstance(confirmed, Response):
        return confirmed
    # Straight to Amazon from this CSRF-checked POST, bound to the session that will be
    # current when Amazon sends the browser back (the new one if the password was given).
    response = begin_attach(services, confirmed.session.id)
    return _with_session(response, services, confirmed.rotated)


@router.post("/account/amazon/unlink")
async def account_unlink(request: Request) -> Response:
    services = get_services(request)
    ctx = request_context(request)
    confirmed = await _confirmed(request, ctx, services)
    if isinstance(confirmed, Response):
        return confirmed
    account, rotated = confirmed.caller.account, confirmed.rotated
    try:
        async with ctx.transaction() as tx:
            await amazon.detach_amazon(
                tx, session=confirmed.session, account=account, password=None
            )
    except ReauthenticationRequired:
        return _with_session(to_account(amazon_error="reauth"), services, rotated)
    except LastSignInMethod:
        return _with_session(to_account(amazon_error="last-method"), services, rotated)
    except LwaAccountsError:  # nothing linked (a second click): the page shows the truth
        return _with_session(to_account(), services, rotated)
    return _with_session(to_account(amazon="unlinked"), services, rotated)
