"""/signin, /register and POST /signout."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.errors import LwaAccountsError, TooManyAttempts, ValidationFailed
from lwa_accounts.flows.accounts import create_prepared, prepare_registration
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.phases import password_sign_in
from lwa_accounts.flows.sessions import SignedIn, end_session, start_session
from lwa_accounts.web.auth import optional_browser_caller
from lwa_accounts.web.cookies import clear_session_cookie, set_device_cookie, set_session_cookie
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.redirects import safe_next
from lwa_accounts.web.services import Services, get_services, request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

GENERIC_SIGN_IN_ERROR = "The username or password is incorrect."


def _retry_headers(error: LwaAccountsError) -> dict[str, str]:
    return {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}


async def _replace_browser_session(tx: Tx, request: Request) -> None:
    """End the browser's previous session, if any: every sign-in starts a new one."""
    previous = await optional_browser_caller(tx, request)
    if previous is not None:
        await end_session(tx, previous.session)


def _signed_in_redirect(signed_in: SignedIn, next_url: str, services: Services) -> Response:
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, signed_in, services.settings, now=services.clock.now())
    return response


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/account", status_code=303)


async def _note_signed_in(request: Request) -> None:
    """Let the header show who is signed in (the forms still work to switch accounts)."""
    async with request_context(request).transaction() as tx:
        await optional_browser_caller(tx, request)


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    await _note_signed_in(request)
    return render(request, "signin.html", {"next": safe_next(request.query_params.get("next"))})


@router.post("/signin")
async def signin_submit(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    login, password = form.get("username", 256), form.get("password", 1100)
    next_url = safe_next(form.get("next"))
    context = {"next": next_url, "username": login[:256]}
    if not login.strip() or not password:
        context["error"] = "Enter your username (or email) and password."
        return render(request, "signin.html", context, status_code=422)
    ctx = request_context(request)
    try:
        signed_in = await password_sign_in(
            ctx, login=login, password=password, kind="browser", device_name=None
        )
    except LwaAccountsError as error:
        if isinstance(error, TooManyAttempts):
            context["error"] = error.detail
        elif error.code == "invalid_credentials":
            context["error"] = GENERIC_SIGN_IN_ERROR
        else:
            context["error"] = error.detail
        return render(
            request,
            "signin.html",
            context,
            status_code=error.status,
            headers=_retry_headers(error),
        )
    async with ctx.transaction() as tx:
        await _replace_browser_session(tx, request)
    response = _signed_in_redirect(signed_in, next_url, services)
    if signed_in.device_proof is not None:  # this browser is now a known device
        set_device_cookie(response, signed_in.device_proof, services.settings)
    return response


@router.get("/register")
async def register_page(request: Request) -> Response:
    await _note_signed_in(request)
    return render(
        request, "register.html", {"next": safe_next(request.query_params.get("next")), "form": {}}
    )


@router.post("/register")
async def register_submit(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    fields = {name: form.get(name, 1100) for name in ("username", "email", "name", "password")}
    next_url = safe_next(form.get("next"))
    shown = {k: v[:256] for k, v in fields.items() if k != "password"}
    ctx = request_context(request)
    try:
        # The per-IP reservation is given back if anything up to the commit fails.
        async with (
            prepare_registration(
                ctx,
                username=fields["username"],
                email=fields["email"] or None,
                name=fields["name"],
                password=fields["password"],
            ) as prepared,
            ctx.transaction() as tx,
        ):
            account = await create_prepared(tx, prepared)
            await _replace_browser_session(tx, request)
            signed_in = await start_session(tx, account, kind="browser", method="registration")
    except ValidationFailed as error:
        return render(
            request,
            "register.html",
            {"next": next_url, "form": shown, "errors": error.errors},
            status_code=error.status,
        )
    except LwaAccountsError as error:
        field = {"username_taken": "username", "email_taken": "email"}.get(error.code)
        errors = {field: error.detail} if field else {}
        return render(
            request,
            "register.html",
            {"next": next_url, "form": shown, "errors": errors, "error": error.detail},
            status_code=error.status,
            headers=_retry_headers(error),
        )
    return _signed_in_redirect(signed_in, next_url, services)


@router.post("/signout")
async def signout(request: Request) -> Response:
    services = get_services(request)
    await read_form(request)
    async with request_context(request).transaction() as tx:
        caller = await optional_browser_caller(tx, request)
        if caller is not None:
            await end_session(tx, caller.session)
    response = RedirectResponse("/signin?signed_out=1", status_code=303)
    clear_session_cookie(response, services.settings)
    return response
