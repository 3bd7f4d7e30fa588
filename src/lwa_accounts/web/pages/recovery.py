"""Password recovery pages: /forgot, the e-mailed link's /reset-password, and
/reset-password/code for mail read on another device (``flows/recovery.py``).

``POST /forgot`` answers before it looks anything up: the redirect to /forgot/sent is the
same for every login, and the look-up, the budget and the message run after the answer
has left (a background task), so neither the answer nor its timing says whether an
account exists. The link's token travels in the URL only as far as the GET that shows the
form (``Referrer-Policy: no-referrer``, ``Cache-Control: no-store``); the form posts it
back in its body. Nothing here signs anyone in.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import RedirectResponse, Response

from lwa_accounts.core.email_codes import LIFETIMES
from lwa_accounts.errors import EmailLinkRefused, LwaAccountsError, ValidationFailed, WrongEmailCode
from lwa_accounts.flows import recovery
from lwa_accounts.web.forms import Form, read_form
from lwa_accounts.web.services import request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

LOGIN_MAX = 256
TOKEN_MAX = 512  # a link token is about 130 characters
CODE_MAX = 32
PASSWORD_FIELD_MAX = 1100
NO_STORE = {"Cache-Control": "no-store"}
MINUTES = int(LIFETIMES[recovery.PURPOSE].total_seconds() // 60)

# What a refused link's page says, per reason (the error's code).
REFUSED_TITLES = {
    "email_link_invalid": "This link does not work",
    "email_link_expired": "This link has expired",
    "email_link_used": "This link was already used",
    "email_code_exhausted": "This link is no longer valid",
}
REFUSED_DETAILS = {
    "email_link_used": (
        "This link was already used, or a newer email replaced it: only the newest link "
        "works, once."
    ),
    "email_link_expired": f"Reset links work for {MINUTES} minutes. This one is older.",
}


def reset_request_task(request: Request, login: str) -> BackgroundTask:
    """The look-up and the message, to run after the answer has been sent."""
    return BackgroundTask(recovery.request_reset_quietly, request_context(request), login=login)


@router.get("/forgot")
async def forgot_page(request: Request) -> Response:
    return render(request, "recovery/forgot.html", {})


@router.post("/forgot")
async def forgot_submit(request: Request) -> Response:
    form = await read_form(request)
    login = form.get("login", LOGIN_MAX)
    if not login.strip():
        errors = {"login": "Enter your username or email."}
        return render(request, "recovery/forgot.html", {"errors": errors}, status_code=422)
    return RedirectResponse(
        "/forgot/sent", status_code=303, background=reset_request_task(request, login)
    )


@router.get("/forgot/sent")
async def forgot_sent(request: Request) -> Response:
    return render(request, "recovery/sent.html", {"minutes": MINUTES})


def _refused(request: Request, error: LwaAccountsError) -> Response:
    return render(
        request,
        "recovery/refused.html",
        {
            "title": REFUSED_TITLES.get(error.code, error.title),
            "detail": REFUSED_DETAILS.get(error.code, error.detail),
        },
        status_code=error.status,
        headers=NO_STORE,
    )


async def _reset_form(
    request: Request,
    token: str,
    *,
    errors: dict[str, str] | None = None,
    choice: str = "",
    status_code: int = 200,
) -> Response:
    try:
        async with request_context(request).transaction() as tx:
            target = await recovery.open_reset_link(tx, token)
    except EmailLinkRefused as error:
        return _refused(request, error)
    context: dict[str, Any] = {
        "token": token,
        "username": target.username,
        "amazon": recovery.describe_amazon(target.amazon) if target.amazon else None,
        "errors": errors or {},
        "choice": choice,
    }
    return render(
        request, "recovery/reset.html", context, status_code=status_code, headers=NO_STORE
    )


@router.get("/reset-password")
async def reset_page(request: Request) -> Response:
    # Only shows the form: the link is spent by the form's POST, never by opening it (a
    # mail scanner that follows links must not use it up).
    token = request.query_params.get("token", "")
    return await _reset_form(request, token[:TOKEN_MAX])


@router.post("/reset-password")
async def reset_submit(request: Request) -> Response:
    form = await read_form(request)
    token = form.get("token", TOKEN_MAX)
    choice = form.get("amazon_link", 16)
    try:
        await recovery.reset_with_link(
            request_context(request),
            token=token,
            new_password=form.get("new_password", PASSWORD_FIELD_MAX),
            amazon_link=choice or None,
        )
    except EmailLinkRefused as error:
        return _refused(request, error)
    except ValidationFailed as error:
        return await _reset_form(
            request, token, errors=error.errors, choice=choice, status_code=error.status
        )
    return RedirectResponse("/reset-password/done", status_code=303)


def _code_form(
    request: Request,
    form: Form | None = None,
    *,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {"errors": errors or {}, "error": error}
    if form is not None:
        context.update(
            login=form.get("login", LOGIN_MAX),
            code=form.get("code", CODE_MAX),
            choice=form.get("amazon_link", 16),
        )
    return render(
        request, "recovery/reset_code.html", context, status_code=status_code, headers=NO_STORE
    )


@router.get("/reset-password/code")
async def code_page(request: Request) -> Response:
    return _code_form(request)


@router.post("/reset-password/code")
async def code_submit(request: Request) -> Response:
    form = await read_form(request)
    login, code = form.get("login", LOGIN_MAX), form.get("code", CODE_MAX)
    missing = {
        name: message
        for name, value, message in (
            ("login", login, "Enter your username or email."),
            ("code", code, "Enter the code from the email."),
        )
        if not value.strip()
    }
    if missing:
        return _code_form(request, form, errors=missing, status_code=422)
    try:
        await recovery.reset_with_code(
            request_context(request),
            login=login,
            code=code,
            new_password=form.get("new_password", PASSWORD_FIELD_MAX),
            amazon_link=form.get("amazon_link", 16) or None,
        )
    except ValidationFailed as error:
        return _code_form(request, form, errors=error.errors, status_code=error.status)
    except WrongEmailCode as error:
        errors = {"code": error.detail}
        return _code_form(request, form, errors=errors, status_code=error.status)
    return RedirectResponse("/reset-password/done", status_code=303)


@router.get("/reset-password/done")
async def reset_done(request: Request) -> Response:
    return render(request, "recovery/done.html", {})
