"""/not-me: the "This wasn't me" link of every notice by mail (``flows/not_me.py``).

``GET /not-me?token=`` only shows what confirming will do (mail scanners open links);
``POST /not-me`` (CSRF-checked, the token in the body) does it, then redirects to
``GET /not-me/done``. No sign-in is needed: the person may be locked out. A refused
token gets a page saying whether it is not valid or expired (400 / 410).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.errors import EmailLinkRefused
from lwa_accounts.flows import not_me
from lwa_accounts.flows.notices import SUMMARIES
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.services import request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)


def _refused(request: Request, error: EmailLinkRefused) -> Response:
    return render(
        request,
        "not_me/refused.html",
        {"title": error.title, "detail": error.detail},
        status_code=error.status,
    )


@router.get("/not-me")
async def not_me_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    try:
        pending = await not_me.peek(request_context(request), token)
    except EmailLinkRefused as error:
        return _refused(request, error)
    return render(
        request,
        "not_me/confirm.html",
        {
            "token": token,
            "username": pending.username,
            "about": SUMMARIES.get(pending.claim.notice, "your account changed"),
            "sent_at": pending.claim.sent_at,
        },
    )


@router.post("/not-me")
async def not_me_submit(request: Request) -> Response:
    form = await read_form(request)
    token = form.get("token")
    try:
        async with request_context(request).transaction() as tx:
            done = await not_me.report(tx, token)
    except EmailLinkRefused as error:
        return _refused(request, error)
    password = "yes" if done.has_password else "no"
    return RedirectResponse(f"/not-me/done?password={password}", status_code=303)


@router.get("/not-me/done")
async def not_me_done(request: Request) -> Response:
    # Only the wording depends on the query: the work was done by the POST.
    has_password = request.query_params.get("password") != "no"
    return render(request, "not_me/done.html", {"has_password": has_password})
