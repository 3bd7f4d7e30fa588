"""Sign in with Amazon for devices: /api/v1/sessions/amazon, /api/v1/flows/..., /api/v1/me/amazon.

A device that ran Amazon's own flow posts the access token; the server verifies it with
Amazon (tokeninfo ``aud`` must be one of our client ids, then the profile) and answers with
one of three outcomes. Link and registration steps are server-side flows the device finishes
with the flow id (or hands to a phone and polls); a link step takes the account's password
or a code sent to its verified address (``POST /api/v1/flows/email-code``). The flow id
is a bearer-like handle, so it travels in the JSON body (``POST
/api/v1/flows/poll|link|register|email-code``); the retired
``/api/v1/flows/{id}...`` paths answer 410 ``moved`` (web/api/retired.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from lwa_accounts.core.models import PendingFlow
from lwa_accounts.errors import ValidationFailed
from lwa_accounts.flows import amazon
from lwa_accounts.flows.amazon import (
    FlowFinished,
    LinkRequired,
    RegistrationForm,
    SignedInWithAmazon,
)
from lwa_accounts.flows.context import Tx
from lwa_accounts.web.amazon_edge import verify_token
from lwa_accounts.web.api.amazon_models import (
    FLOW_POLL_RESPONSES,
    SIGN_IN_RESPONSES,
    AccountWithAmazonOut,
    AmazonSignedInOut,
    AmazonSignInRequest,
    AttachRequest,
    CodeSentOut,
    DetachRequest,
    FlowOut,
    FlowPendingOut,
    FlowRegisterRequest,
    LinkRequest,
    LinkRequiredOut,
    PrefillOut,
    RegistrationRequiredOut,
)
from lwa_accounts.web.api.models import (
    FlowAlternative,
    FlowRequest,
    SessionTokenOut,
    account_json,
    problems,
)
from lwa_accounts.web.auth import BEARER_SECURITY, authenticate
from lwa_accounts.web.services import get_services, request_context

router = APIRouter(prefix="/api/v1", tags=["amazon"])

# ---- rendering ----


async def signed_in_json(tx: Tx, outcome: SignedInWithAmazon) -> AmazonSignedInOut:
    signed_in = outcome.signed_in
    link = outcome.link or await tx.identities.get_for_account(signed_in.account.id)
    return AmazonSignedInOut(
        created=outcome.created,
        session=SessionTokenOut(token=signed_in.token, expires_at=signed_in.session.expires_at),
        account=account_json(signed_in.account, link),
    )


async def _rendered(tx: Tx, finished: FlowFinished) -> AmazonSignedInOut:
    """A device's own flow finished: its sign-in, rendered in the same transaction."""
    assert isinstance(finished, SignedInWithAmazon)  # Device(): never FlowCompleted
    return await signed_in_json(tx, finished)


async def flow_json(tx: Tx, flow_id: str, flow: PendingFlow) -> FlowOut:
    deps = tx.deps
    if flow.kind == "link":
        target = await tx.accounts.get(flow.target_account_id or "")
        code_to = amazon.code_offer(target)
        alternatives: list[FlowAlternative] = []
        if flow.can_register_instead and deps.settings.amazon_signup != "closed":
            alternatives.append("register")
        if code_to is not None:
            alternatives.append("email_code")
        return FlowOut(
            id=flow_id,
            kind="link",
            expires_at=flow.expires_at,
            email=target.email if target else None,
            can_register_instead=flow.can_register_instead,
            alternatives=alternatives,
            email_code_to=code_to,
        )
    prefill, required = amazon.registration_fields(flow, deps)
    return FlowOut(
        id=flow_id,
        kind="registration",
        expires_at=flow.expires_at,
        prefill=PrefillOut(name=prefill.name, email=prefill.email, postal_code=prefill.postal_code),
        required=sorted(required),
    )


# ---- endpoints ----


@router.post(
    "/sessions/amazon",
    status_code=201,
    response_model=AmazonSignedInOut | LinkRequiredOut | RegistrationRequiredOut,
    responses=SIGN_IN_RESPONSES | problems(401, 403, 409, 413, 422, 503),
    summary="Sign in with an Amazon access token",
    description=(
        "Verifies the token with Amazon (its `aud` must be one of this service's client ids: "
        "401 `token_for_another_app` otherwise, nothing is created), then finds the account "
        "linked to the Amazon user, creates one, or asks for a step. An existing account "
        "with the same email is **never** signed in without its password. Amazon "
        "unreachable: 503 `amazon_unavailable` with `Retry-After`, nothing written."
    ),
)
async def sign_in_with_amazon(
    body: AmazonSignInRequest, request: Request, response: Response
) -> AmazonSignedInOut | LinkRequiredOut | RegistrationRequiredOut:
    ctx = request_context(request)
    profile = await verify_token(ctx, get_services(request), body.access_token)
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx, profile, kind="device", device_name=body.device_name, starter=amazon.Device()
        )
        rendered: AmazonSignedInOut | LinkRequiredOut | RegistrationRequiredOut
        if isinstance(outcome, SignedInWithAmazon):
            rendered = await signed_in_json(tx, outcome)
        else:
            flow = await flow_json(tx, outcome.flow_id, outcome.flow)
            rendered = (
                LinkRequiredOut(flow=flow)
                if isinstance(outcome, LinkRequired)
                else RegistrationRequiredOut(flow=flow)
            )
    response.status_code = 201 if isinstance(rendered, AmazonSignedInOut) else 200
    return rendered


@router.post(
    "/flows/poll",
    response_model=FlowPendingOut | AmazonSignedInOut,
    responses=FLOW_POLL_RESPONSES | problems(400, 404, 410, 413, 422),
    summary="Poll a pending flow (e.g. while it is finished on a phone)",
    description=(
        'Body `{"flow_id"}`. While the flow is pending: 200 `{"result": "pending", "flow": '
        "{...}}`. Once it was completed elsewhere: 201 with this device's new session, "
        "exactly once; then the flow is spent (410 `flow_expired`). Replaces `GET "
        "/api/v1/flows/{id}`: the id is a secret and stays out of URLs."
    ),
)
async def poll_flow(
    body: FlowRequest, request: Request, response: Response
) -> FlowPendingOut | AmazonSignedInOut:
    async with request_context(request).transaction() as tx:
        outcome = await amazon.collect_completed_flow(tx, body.flow_id)
        rendered: FlowPendingOut | AmazonSignedInOut
        if isinstance(outcome, PendingFlow):
            rendered = FlowPendingOut(flow=await flow_json(tx, body.flow_id, outcome))
        else:
            rendered = await signed_in_json(tx, outcome)
    response.status_code = 201 if isinstance(rendered, AmazonSignedInOut) else 200
    return rendered


@router.post(
    "/flows/link",
    status_code=201,
    response_model=AmazonSignedInOut,
    responses=problems(400, 401, 404, 409, 410, 413, 422, 429),
    summary="Prove the local account (password or e-mailed code) and link Amazon to it",
    description=(
        'Body `{"flow_id", "password"}` or `{"flow_id", "code"}`: exactly one (422 '
        "`validation_failed` naming the field otherwise). Wrong password: 401 "
        "`invalid_credentials` with `attempts_left`; the attempts count against the same "
        "throttle as password sign-in (429 `too_many_attempts` with `Retry-After`). Wrong "
        "code: 400 `wrong_email_code` with `attempts_left`; wrong passwords and wrong codes "
        "share the flow's attempts, and a code allows 5 guesses (then 410 "
        "`email_code_exhausted`). No code waiting (none sent, expired, or replaced by a newer "
        "one): 410 `email_link_expired`. No verified address: 409 `code_proof_unavailable`. "
        "Expired or used flow: 410 `flow_expired`."
    ),
)
async def link_flow(body: LinkRequest, request: Request) -> AmazonSignedInOut:
    rendered: AmazonSignedInOut | None = None
    device = amazon.Device()

    async def render(tx: Tx, finished: FlowFinished) -> None:
        nonlocal rendered
        rendered = await _rendered(tx, finished)

    ctx = request_context(request)
    if body.code is not None and body.password is None:

        async def begin_code(tx: Tx) -> amazon.LinkAttempt:
            return await amazon.begin_code_link(tx, body.flow_id, device)

        await amazon.link_with_code(ctx, begin_code, body.code, after=render)
    elif body.password is not None and body.code is None:

        async def begin(tx: Tx) -> amazon.LinkAttempt:
            return await amazon.begin_link(tx, body.flow_id, device)

        # argon2 outside any transaction; finish_link re-checks the flow and the password.
        await amazon.link_with_password(ctx, begin, body.password, after=render)
    else:
        both = body.code is not None
        message = (
            "Give either the password or the code, not both."
            if both
            else "Give the account's password, or the code sent to its e-mail."
        )
        raise ValidationFailed(errors={"code" if both else "password": message})
    assert rendered is not None
    return rendered


@router.post(
    "/flows/email-code",
    status_code=202,
    response_model=CodeSentOut,
    responses=problems(400, 404, 409, 410, 413, 422, 429),
    summary="E-mail a code that proves the local account, instead of its password",
    description=(
        'Body `{"flow_id"}` of a `link_required` flow whose `alternatives` has '
        "`email_code`. Sends a six-digit code to the account's own verified address (never "
        "to Amazon's), valid 10 minutes and never past the flow, for this flow only; a new "
        'one replaces the previous one. Then POST /api/v1/flows/link `{"flow_id", "code"}`. '
        "409 `code_proof_unavailable` when the account has no verified address (prove it "
        "with the password); 429 `too_many_attempts` with `Retry-After` when the account's "
        "or this address's e-mail budget is spent; 410 `flow_expired` for a used, expired "
        "or exhausted flow."
    ),
)
async def email_code(body: FlowRequest, request: Request) -> CodeSentOut:
    async with request_context(request).transaction() as tx:
        attempt = await amazon.begin_code_link(tx, body.flow_id, amazon.Device())
        sent = await amazon.send_link_code(tx, attempt)
    return CodeSentOut(sent_to=sent.sent_to, expires_at=sent.expires_at)


@router.post(
    "/flows/register",
    status_code=201,
    response_model=AmazonSignedInOut,
    responses=problems(400, 403, 404, 409, 410, 413, 422),
    summary="Finish a registration (or create a separate account instead of linking)",
    description=(
        'Body `{"flow_id", ...}`: only the fields in the flow\'s `required` list must be '
        "given; 422 `validation_failed` with `errors` per field; 409 `username_taken` / "
        "`email_taken`."
    ),
)
async def register_flow(body: FlowRegisterRequest, request: Request) -> AmazonSignedInOut:
    form = RegistrationForm(
        username=body.username, name=body.name, email=body.email, postal_code=body.postal_code
    )
    async with request_context(request).transaction() as tx:
        finished = await amazon.complete_registration(tx, body.flow_id, form, amazon.Device())
        return await _rendered(tx, finished)


@router.post(
    "/me/amazon",
    response_model=AccountWithAmazonOut,
    responses=problems(401, 403, 409, 413, 422, 429, 503),
    summary="Link an Amazon account to the signed-in account",
    openapi_extra=BEARER_SECURITY,
    description=(
        "Needs a sign-in within the last 5 minutes or the `password` (403 "
        "`reauthentication_required`). 409 `amazon_linked_elsewhere` when that Amazon account "
        "belongs to another account (nothing more is said about it); 409 `already_linked` "
        "when this account has a different Amazon account. The new link ends the account's "
        "other sessions while its email is unverified (the caller keeps its token)."
    ),
)
async def attach(body: AttachRequest, request: Request) -> AccountWithAmazonOut:
    ctx = request_context(request)
    async with ctx.transaction() as tx:
        caller = await authenticate(tx, request, allow_cookie=False)
    profile = await verify_token(ctx, get_services(request), body.access_token)
    async with ctx.transaction() as tx:
        attached = await amazon.attach_amazon(
            tx, profile, session=caller.session, account=caller.account, password=body.password
        )
    return AccountWithAmazonOut(account=account_json(attached.account, attached.link))


@router.delete(
    "/me/amazon",
    status_code=204,
    responses=problems(401, 403, 404, 409, 429),
    summary="Unlink Amazon from the signed-in account",
    openapi_extra=BEARER_SECURITY,
    description=(
        "Needs a sign-in within the last 5 minutes or the `password`. 409 "
        "`last_sign_in_method` when Amazon is the only way to sign in (set a password first)."
    ),
)
async def detach(
    request: Request, body: Annotated[DetachRequest | None, Body()] = None
) -> Response:
    async with request_context(request).transaction() as tx:
        caller = await authenticate(tx, request, allow_cookie=False)
        await amazon.detach_amazon(
            tx,
            session=caller.session,
            account=caller.account,
            password=body.password if body else None,
        )
    return Response(status_code=204)
