"""The browser's link step by a code e-mailed to the account's verified address.

"Email me a code" on /auth/amazon/link (offered only for a verified address) posts to
``/auth/amazon/link/email-code``: the code goes to that address (never Amazon's), then a
303 to ``GET /auth/amazon/link/code``, the code form, whose ``POST /auth/amazon/link/code``
links and signs in exactly as the right password does (``flows.amazon.link_by_code``). The
same flow cookie, binding and CSRF check as the password form (``amazon_flow.py``, whose
link page shows a refused sending).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.errors import (
    CodeProofUnavailable,
    FlowExpired,
    FlowNotFound,
    LwaAccountsError,
    ServiceUnavailable,
    WrongEmailCode,
)
from lwa_accounts.flows import amazon
from lwa_accounts.flows.context import Tx
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.pages.amazon_common import (
    flow_cookie,
    flow_gone,
    pending,
    signed_in_response,
)
from lwa_accounts.web.pages.amazon_flow import _link_refused
from lwa_accounts.web.redirects import safe_next
from lwa_accounts.web.services import Services, get_services, request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

CODE_PAGE = "/auth/amazon/link/code"
CODE_FIELD_MAX = 32


class _NotALink(Exception):
    """The flow became a registration ("create a separate account"): no code here."""


def attempts_text(error: LwaAccountsError) -> str:
    """A refusal in the person's words, with the attempts left after a wrong code."""
    left = error.extra.get("attempts_left")
    if isinstance(error, WrongEmailCode) and isinstance(left, int):
        return f"{error.detail} {left} attempt{'s' if left != 1 else ''} left."
    return error.detail


def code_page(request: Request, code_to: str, *, error: LwaAccountsError | None = None) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if error and error.retry_after else None
    return render(
        request,
        "amazon/link_code.html",
        {"code_to": code_to, "error": attempts_text(error) if error else None},
        status_code=error.status if error else 200,
        headers=headers,
    )


@router.post("/auth/amazon/link/email-code")
async def send_code(request: Request) -> Response:
    services = get_services(request)
    await read_form(request)  # the CSRF check
    try:
        data = flow_cookie(request, services)
        originator = amazon.Browser(data["binding"])
        async with request_context(request).transaction() as tx:
            flow = await amazon.get_flow(tx, data["flow"], originator)
            if flow.kind != "link":
                return RedirectResponse("/auth/amazon/register", status_code=303)
            attempt = await amazon.begin_code_link(tx, data["flow"], originator)
            await amazon.send_link_code(tx, attempt)
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)
    except ServiceUnavailable:
        raise
    except LwaAccountsError as error:  # no verified address, the e-mail budget spent
        return await _link_refused(request, services, error)
    return RedirectResponse(CODE_PAGE, status_code=303)


@router.get(CODE_PAGE)
async def code_form(request: Request) -> Response:
    services = get_services(request)
    try:
        async with request_context(request).transaction() as tx:
            _, flow = await pending(request, services, tx)
            if flow.kind != "link":
                return RedirectResponse("/auth/amazon/register", status_code=303)
            code_to = amazon.code_offer(await tx.accounts.get(flow.target_account_id or ""))
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)
    if code_to is None:
        return RedirectResponse("/auth/amazon/link", status_code=303)
    return code_page(request, code_to)


@router.post(CODE_PAGE)
async def code_submit(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    typed = form.get("code", CODE_FIELD_MAX)
    try:
        data = flow_cookie(request, services)
    except FlowExpired as gone:
        return flow_gone(request, services, gone)
    if not typed.strip():  # nothing typed: nothing to spend an attempt on
        return await _code_refused(request, services, WrongEmailCode("Enter the code."))
    originator = amazon.Browser(data["binding"])
    rendered: Response | None = None

    async def begin(tx: Tx) -> amazon.LinkAttempt:
        flow = await amazon.get_flow(tx, data["flow"], originator)
        if flow.kind != "link":
            raise _NotALink()
        return await amazon.begin_code_link(tx, data["flow"], originator)

    async def signed_in(tx: Tx, finished: amazon.FlowFinished) -> None:
        nonlocal rendered
        assert isinstance(finished, amazon.SignedInWithAmazon)  # a Browser originator
        next_url = safe_next(data.get("next"))
        rendered = await signed_in_response(request, services, tx, finished.signed_in, next_url)

    try:
        await amazon.link_with_code(request_context(request), begin, typed, after=signed_in)
    except _NotALink:
        return RedirectResponse("/auth/amazon/register", status_code=303)
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)
    except ServiceUnavailable:
        raise
    except CodeProofUnavailable as unavailable:
        return await _link_refused(request, services, unavailable)
    except LwaAccountsError as error:
        return await _code_refused(request, services, error)
    assert rendered is not None
    return rendered


async def _code_refused(request: Request, services: Services, error: LwaAccountsError) -> Response:
    """The code form again, saying why (a wrong, dead or missing code)."""
    try:
        async with request_context(request).transaction() as tx:
            _, flow = await pending(request, services, tx)
            code_to = amazon.code_offer(await tx.accounts.get(flow.target_account_id or ""))
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)
    if code_to is None:
        return await _link_refused(request, services, CodeProofUnavailable())
    return code_page(request, code_to, error=error)
