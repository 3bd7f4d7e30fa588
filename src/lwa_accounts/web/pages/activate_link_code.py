"""/activate's link step by a code e-mailed to the account's verified address.

The phone's other proof of the local account, instead of its password, for a TV's flow
handed off to it (``activate.py`` is the rest of /activate; these pages share its helpers).
Like the password it needs this browser's Amazon proof for this very hand-off first
(security.md item 14b): without one, nothing is sent and nothing is spent. "Email me a
code" posts to ``/activate/link/email-code`` (the code goes to the account's own verified
address), then a 303 to ``GET /activate/link/code``, the code form, whose ``POST
/activate/link/code`` completes the flow for the TV exactly as the right password does.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.core.models import PendingFlow
from lwa_accounts.errors import (
    AmazonProofRequired,
    CodeProofUnavailable,
    EmailLinkRefused,
    LwaAccountsError,
    TooManyAttempts,
    WrongEmailCode,
)
from lwa_accounts.flows.amazon import (
    FlowFinished,
    LinkAttempt,
    begin_code_link,
    code_offer,
    link_with_code,
    send_link_code,
)
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.devices import FoundCode
from lwa_accounts.flows.tv_handoff import (
    begin_handoff_link,
    close_handoff,
    handoff_flow,
)
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.handoff_proof import clear_proof
from lwa_accounts.web.pages.activate import (
    CODE_FIELD_MAX,
    _asked,
    _done,
    _enter_page,
    _link_page,
    _lookup,
    _proof_for,
    _proven_link_handoff,
)
from lwa_accounts.web.pages.amazon_link_code import attempts_text
from lwa_accounts.web.services import get_services, request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

CODE_PAGE = "/activate/link/code"
EMAIL_CODE_MAX = 32


async def _code_page(
    request: Request, found: FoundCode, flow: PendingFlow, *, error: LwaAccountsError | None = None
) -> Response:
    async with request_context(request).transaction() as tx:
        code_to = code_offer(await tx.accounts.get(flow.target_account_id or ""))
    if code_to is None:  # no longer verified: the password form says so
        proof = _proof_for(request, found)
        return await _link_page(
            request, get_services(request), found, flow, proof=proof, error=CodeProofUnavailable()
        )
    headers = {"Retry-After": str(error.retry_after)} if error and error.retry_after else None
    return render(
        request,
        "activate/link_code.html",
        {**_asked(found), "code_to": code_to, "error": attempts_text(error) if error else None},
        status_code=error.status if error else 200,
        headers=headers,
    )


@router.post("/activate/link/email-code")
async def send_code(request: Request) -> Response:
    """A code for this hand-off's link step, only with this browser's Amazon proof."""
    services = get_services(request)
    form = await read_form(request)
    typed = form.get("code", CODE_FIELD_MAX)
    ctx = request_context(request)
    try:
        async with ctx.transaction() as tx:
            found = await _lookup(tx, form)
            _, flow = await handoff_flow(tx, found)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    proof = _proof_for(request, found)
    try:
        async with ctx.transaction() as tx:
            attempt = await begin_handoff_link(tx, found, proof=proof, start=begin_code_link)
            await send_link_code(tx, attempt)
    except (AmazonProofRequired, CodeProofUnavailable, TooManyAttempts) as refusal:
        return await _link_page(request, services, found, flow, proof=proof, error=refusal)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    return RedirectResponse(CODE_PAGE, status_code=303)


@router.get(CODE_PAGE)
async def code_form(request: Request) -> Response:
    """The code form for the hand-off this browser proved (its proof cookie names it)."""
    proven = await _proven_link_handoff(request)
    if isinstance(proven, Response):
        return proven
    found, flow, _ = proven
    return await _code_page(request, found, flow)


@router.post(CODE_PAGE)
async def code_submit(request: Request) -> Response:
    """The typed code, accepted only with this browser's Amazon proof for this hand-off;
    the right one completes the TV's flow like the right password."""
    services = get_services(request)
    form = await read_form(request)
    typed = form.get("code", CODE_FIELD_MAX)
    email_code = form.get("email_code", EMAIL_CODE_MAX)
    ctx = request_context(request)
    try:
        async with ctx.transaction() as tx:
            found = await _lookup(tx, form)
            _, flow = await handoff_flow(tx, found)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    if not email_code.strip():  # nothing typed: nothing to spend an attempt on
        return await _code_page(request, found, flow, error=WrongEmailCode("Enter the code."))
    proof = _proof_for(request, found)

    async def begin(tx: Tx) -> LinkAttempt:
        return await begin_handoff_link(tx, found, proof=proof, start=begin_code_link)

    async def close(tx: Tx, _: FlowFinished) -> None:
        await close_handoff(tx, found)

    try:
        await link_with_code(ctx, begin, email_code, after=close)
    except (AmazonProofRequired, CodeProofUnavailable) as refusal:
        return await _link_page(request, services, found, flow, proof=proof, error=refusal)
    except EmailLinkRefused as refusal:  # wrong, dead or no code
        return await _code_page(request, found, flow, error=refusal)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    response = _done(
        request,
        "Linked",
        "Amazon is now linked to your account. Your TV is signing in; you can close this page.",
    )
    clear_proof(response, services)
    return response
