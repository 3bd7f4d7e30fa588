"""/activate: the phone side of TV sign-in.

The person types the code from the TV (a QR code's URL only pre-fills it). Opening a
page never approves anything (security.md item 17): every step is an explicit POST with a
CSRF token, and every code lookup is rate-limited per IP and per code (item 15).

- A device code (our RFC 8628 shaped sign-in): sign in here (password or Amazon on the
  web), then Approve or Deny the named device.
- A hand-off code ("finish on your phone"): the TV signed in with Amazon and either an
  account here holds that Amazon email (link) or a registration is needed. The page names
  the device, the IP and the time the TV asked, and warns: only continue for a screen in
  front of you. A link first needs "Sign in with Amazon" on this phone as the same Amazon
  user as the TV (``POST /activate/amazon`` -> Amazon -> the callback leaves a signed proof
  cookie -> ``GET /activate/link``), and only then is the password accepted
  (``POST /activate/link``; security.md item 14b: a password typed here for someone
  else's TV must never link their Amazon account to yours). A registration needs no
  Amazon proof (it links no existing account). The TV collects its session by itself.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from lwa_accounts.core.models import PendingFlow
from lwa_accounts.errors import (
    AmazonProofRequired,
    EmailTaken,
    InvalidCredentials,
    InvalidUserCode,
    LwaAccountsError,
    UsernameTaken,
    ValidationFailed,
)
from lwa_accounts.flows.amazon import (
    FlowFinished,
    LinkAttempt,
    OnAnotherDevice,
    RegistrationForm,
    code_offer,
    complete_registration,
    link_with_password,
    registration_fields,
)
from lwa_accounts.flows.amazon.profile import available_username, username_base
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.devices import FoundCode, decide_device, find_code
from lwa_accounts.flows.tv_handoff import (
    AmazonProof,
    begin_handoff_link,
    close_handoff,
    handoff_by_grant,
    handoff_flow,
    proof_matches,
)
from lwa_accounts.web.auth import optional_browser_caller
from lwa_accounts.web.forms import Form, read_form
from lwa_accounts.web.handoff_proof import clear_proof, read_proof
from lwa_accounts.web.pages.amazon_common import amazon_form_headers, begin_trip
from lwa_accounts.web.services import Services, get_services, request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

CODE_FIELD_MAX = 32


def _retry_headers(error: LwaAccountsError) -> dict[str, str]:
    return {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}


def _enter_page(
    request: Request, *, code: str = "", error: LwaAccountsError | None = None
) -> Response:
    return render(
        request,
        "activate/enter.html",
        {"code": code, "error": error.detail if error else None},
        status_code=error.status if error else 200,
        headers=_retry_headers(error) if error else None,
    )


@router.get("/activate")
async def activate_page(request: Request) -> Response:
    """Shows the form, pre-filled from ?code= (a QR code); looks nothing up by itself."""
    async with request_context(request).transaction() as tx:
        await optional_browser_caller(tx, request)  # for the header's "signed in as"
    code = request.query_params.get("code", "")[:CODE_FIELD_MAX]
    return _enter_page(request, code=code)


async def _lookup(tx: Tx, form: Form) -> FoundCode:
    """The typed code (throttled; a wrong one is refused and its audit event kept)."""
    return await find_code(tx, form.get("code", CODE_FIELD_MAX))


@router.post("/activate")
async def activate_submit(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    typed = form.get("code", CODE_FIELD_MAX)
    flow: PendingFlow | None = None
    username = ""
    try:
        async with request_context(request).transaction() as tx:
            found = await _lookup(tx, form)
            caller = await optional_browser_caller(tx, request)
            if found.record.purpose == "handoff":
                _, flow = await handoff_flow(tx, found)
                if flow.kind == "registration":
                    base = username_base(flow.profile.email, flow.profile.name)
                    username = await available_username(tx, base)
    except LwaAccountsError as error:  # a wrong code, too many attempts, a flow gone
        return _enter_page(request, code=typed, error=error)
    if found.record.purpose == "device":
        if caller is None:
            next_url = "/activate?" + urlencode({"code": found.display_code})
            return render(
                request,
                "activate/signin_needed.html",
                {
                    "device_name": found.device_name,
                    "display_code": found.display_code,
                    "next": next_url,
                },
            )
        return render(
            request, "activate/confirm.html", {**_asked(found), "account": caller.account}
        )
    if flow is None:
        return _enter_page(request, code=typed, error=InvalidUserCode())
    if flow.kind == "link":
        return await _link_page(request, services, found, flow, proof=_proof_for(request, found))
    return _register_page(
        request,
        services,
        found,
        flow,
        form_values={
            "username": username,
            "name": flow.profile.name or "",
            "email": flow.profile.email or "",
            "postal_code": flow.profile.postal_code or "",
        },
    )


def _proof_for(request: Request, found: FoundCode) -> AmazonProof | None:
    """This browser's Amazon proof, if it was made for this hand-off code."""
    held = read_proof(request, get_services(request))
    if held is None or held[1] != found.code:
        return None
    return held[0]


def _asked(found: FoundCode) -> dict[str, Any]:
    """What the hand-off row knows about the TV's request: shown so a person can tell a
    screen in front of them from someone else's."""
    return {
        "device_name": found.device_name,
        "display_code": found.display_code,
        "asked_ip": found.record.ip or "unknown",
        "asked_at": found.record.grant.created_at,
    }


async def _link_page(
    request: Request,
    services: Services,
    found: FoundCode,
    flow: PendingFlow,
    *,
    proof: AmazonProof | None,
    error: LwaAccountsError | None = None,
) -> Response:
    """Step 1 (no proof yet): sign in with Amazon here. Step 2 (proven): the password."""
    async with request_context(request).transaction() as tx:
        target = await tx.accounts.get(flow.target_account_id or "")
    proven = proof_matches(proof, found, flow)
    headers = _retry_headers(error) if error else {}
    if not proven:
        headers |= amazon_form_headers(services)  # its form leads to Amazon
    return render(
        request,
        "activate/link.html",
        {
            **_asked(found),
            "proven": proven,
            "amazon_email": flow.profile.email,
            "account_email": target.email if target else "",
            "code_to": code_offer(target) if proven else None,  # activate_link_code.py
            "error": error.detail if error else None,
        },
        status_code=error.status if error else 200,
        headers=headers,
    )


def _register_page(
    request: Request,
    services: Services,
    found: FoundCode,
    flow: PendingFlow,
    *,
    form_values: dict[str, str],
    error: LwaAccountsError | None = None,
) -> Response:
    _, required = registration_fields(flow, services.deps)
    errors: dict[str, Any] = error.errors if isinstance(error, ValidationFailed) else {}
    if isinstance(error, UsernameTaken):
        errors = {"username": error.detail}
    elif isinstance(error, EmailTaken):
        errors = {"email": error.detail}
    return render(
        request,
        "activate/register.html",
        {
            **_asked(found),
            "form": form_values,
            "required": sorted(required),
            "errors": errors,
            "error": error.detail if error is not None and not errors else None,
        },
        status_code=error.status if error else 200,
        headers=_retry_headers(error) if error else None,
    )


def _done(request: Request, title: str, message: str) -> Response:
    return render(request, "activate/done.html", {"title": title, "message": message})


@router.post("/activate/decide")
async def activate_decide(request: Request) -> Response:
    form = await read_form(request)
    typed = form.get("code", CODE_FIELD_MAX)
    decision = form.get("decision", 16)
    if decision not in ("approve", "deny"):
        return _enter_page(request, code=typed, error=InvalidUserCode("Choose Approve or Deny."))
    try:
        async with request_context(request).transaction() as tx:
            caller = await optional_browser_caller(tx, request)
            found = await _lookup(tx, form)
            if caller is not None:
                await decide_device(
                    tx, found=found, account=caller.account, approve=decision == "approve"
                )
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    if caller is None:
        return _enter_page(
            request, code=typed, error=InvalidUserCode("Sign in first, then enter the code again.")
        )
    if decision == "approve":
        return _done(
            request,
            "Device approved",
            f"{found.device_name} is signing in to your account now. You can close this page.",
        )
    return _done(request, "Device denied", f"{found.device_name} was not signed in.")


@router.post("/activate/amazon")
async def activate_amazon(request: Request) -> Response:
    """Step 1 of a hand-off link: "Sign in with Amazon" on this phone. The trip is bound to
    this hand-off row and its code (in the signed, single-use trip cookie)."""
    services = get_services(request)
    form = await read_form(request)
    typed = form.get("code", CODE_FIELD_MAX)
    try:
        async with request_context(request).transaction() as tx:
            found = await _lookup(tx, form)
            _, flow = await handoff_flow(tx, found)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    if flow.kind != "link":
        return _enter_page(request, code=typed, error=InvalidUserCode())
    return begin_trip(
        services,
        intent="handoff",
        next_url="/activate",
        extra={"grant": found.record.id, "code": found.code},
    )


async def _proven_link_handoff(
    request: Request,
) -> tuple[FoundCode, PendingFlow, AmazonProof] | Response:
    """The link step's hand-off this browser proved at Amazon (its proof cookie names it),
    or the page to answer instead (no proof, a refusal, or no longer a link step)."""
    services = get_services(request)
    held = read_proof(request, services)
    if held is None:
        return _enter_page(request, error=AmazonProofRequired())
    proof, code = held
    flow: PendingFlow | None = None
    try:
        async with request_context(request).transaction() as tx:
            await optional_browser_caller(tx, request)  # for the header's "signed in as"
            found = await handoff_by_grant(tx, grant_id=proof.grant_id, code=code)
            if found is not None:
                _, flow = await handoff_flow(tx, found)
    except LwaAccountsError as error:
        return _enter_page(request, error=error)
    if found is None or flow is None or flow.kind != "link":
        response = _enter_page(request, error=InvalidUserCode())
        clear_proof(response, services)
        return response
    return found, flow, proof


@router.get("/activate/link")
async def activate_link_page(request: Request) -> Response:
    """Back from Amazon with a proof: the password form for that hand-off."""
    proven = await _proven_link_handoff(request)
    if isinstance(proven, Response):
        return proven
    found, flow, proof = proven
    return await _link_page(request, get_services(request), found, flow, proof=proof)


@router.post("/activate/link")
async def activate_link(request: Request) -> Response:
    """Step 2: the password, accepted only with this browser's Amazon proof for this very
    hand-off; without one, 403 and nothing is checked, linked or used up."""
    services = get_services(request)
    form = await read_form(request)
    typed = form.get("code", CODE_FIELD_MAX)
    password = form.get("password", 1100)
    ctx = request_context(request)
    try:
        async with ctx.transaction() as tx:
            found = await _lookup(tx, form)
            _, flow = await handoff_flow(tx, found)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    proof = _proof_for(request, found)

    async def begin(tx: Tx) -> LinkAttempt:
        return await begin_handoff_link(tx, found, proof=proof)

    async def close(tx: Tx, _: FlowFinished) -> None:
        await close_handoff(tx, found)

    try:
        # argon2 outside any transaction; finish_link re-checks the flow and the password.
        await link_with_password(ctx, begin, password, after=close)
    except (InvalidCredentials, AmazonProofRequired) as refusal:
        return await _link_page(request, services, found, flow, proof=proof, error=refusal)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    response = _done(
        request,
        "Linked",
        "Amazon is now linked to your account. Your TV is signing in; you can close this page.",
    )
    clear_proof(response, services)
    return response


@router.post("/activate/register")
async def activate_register(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    typed = form.get("code", CODE_FIELD_MAX)
    values = {name: form.get(name, 300) for name in ("username", "name", "email", "postal_code")}
    ctx = request_context(request)
    try:
        async with ctx.transaction() as tx:
            found = await _lookup(tx, form)
            flow_id, flow = await handoff_flow(tx, found)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    registration = RegistrationForm(
        username=values["username"],
        name=values["name"],
        email=values["email"] or None,
        postal_code=values["postal_code"] or None,
    )
    try:
        async with ctx.transaction() as tx:
            await complete_registration(tx, flow_id, registration, OnAnotherDevice())
            await close_handoff(tx, found)
    except (ValidationFailed, UsernameTaken, EmailTaken) as error:
        return _register_page(request, services, found, flow, form_values=values, error=error)
    except LwaAccountsError as error:
        return _enter_page(request, code=typed, error=error)
    return _done(
        request,
        "Account created",
        "Your account is ready and linked to Amazon. Your TV is signing in; "
        "you can close this page.",
    )
