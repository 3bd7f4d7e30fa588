"""The "Login with Amazon" web flow: the trip to Amazon and the callback.

A trip to Amazon (``begin_trip``: state + PKCE S256, bound to this browser by a signed
single-use cookie) -> Amazon's /ap/oa -> /auth/amazon/callback (the code is exchanged
server-side with the client secret, the token verified: ``aud``, profile). What the
callback does depends on the trip's intent, fixed when the trip began:

- ``signin`` (``GET /auth/amazon/start``, the "Login with Amazon" link): signed in, or
  /auth/amazon/link (prove the local password of the account holding the email) or
  /auth/amazon/register (prefilled registration): ``pages/amazon_flow.py``.
- ``attach`` (only from a CSRF-checked POST: the /account page's form to
  ``/account/amazon/link``, or ``POST /auth/amazon/start`` with ``intent=attach``; never a
  GET, security.md item 20): links this Amazon identity to the signed-in account, and only
  if the browser is still in the session that started the trip.
- ``handoff`` (from /activate's "Sign in with Amazon", a CSRF-checked POST): the phone
  proves the Amazon identity of a TV's pending link flow (security.md item 14b); a match
  leaves a short-lived signed proof cookie for /activate (``web/handoff_proof.py``), a
  mismatch is refused and audited (``flows/tv_handoff.py``).

Every form carries a CSRF token; every sign-in gets a new session.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.core.models import AmazonProfile
from lwa_accounts.errors import (
    AmazonError,
    InvalidUserCode,
    LwaAccountsError,
    ReauthenticationRequired,
    ServiceUnavailable,
)
from lwa_accounts.flows import amazon
from lwa_accounts.flows.context import Context
from lwa_accounts.flows.credentials import recently_authenticated
from lwa_accounts.flows.tv_handoff import handoff_by_grant, handoff_flow, prove_amazon
from lwa_accounts.web import amazon_cookies as cookies
from lwa_accounts.web.amazon_edge import amazon_client, verify_token
from lwa_accounts.web.auth import optional_browser_caller
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.handoff_proof import write_proof
from lwa_accounts.web.pages.amazon_common import (
    CALLBACK_PATH,
    begin_attach,
    begin_trip,
    callback_uri,
    error_page,
    message,
    session_digest,
    signed_in_response,
    to_account,
    write_flow_cookie,
)
from lwa_accounts.web.redirects import safe_next
from lwa_accounts.web.services import Services, get_services, request_context

router = APIRouter(include_in_schema=False)

# What Amazon's error codes on the callback mean to a person.
AMAZON_ERRORS = {
    "access_denied": "You chose not to share your Amazon account with us. Nothing was changed.",
    "temporarily_unavailable": "Amazon is busy right now. Please try again in a moment.",
    "server_error": "Amazon had a problem signing you in. Please try again in a moment.",
}
DEFAULT_AMAZON_ERROR = "Amazon could not complete the sign-in. Please try again."


@router.get("/auth/amazon/start")
async def start(request: Request) -> Response:
    """A plain sign-in only. Opening a link never attaches anything (security.md item
    20): ``intent=attach`` on a GET is refused."""
    services = get_services(request)
    if request.query_params.get("intent", "") not in ("", "signin"):
        return message(
            request,
            "Link Amazon from your account page",
            "Linking an Amazon account to your account starts from the button on your "
            "account page. Nothing was changed.",
            status_code=400,
            back="/account",
        )
    return begin_trip(
        services, intent="signin", next_url=safe_next(request.query_params.get("next"))
    )


@router.post("/auth/amazon/start")
async def start_posted(request: Request) -> Response:
    """The same trips from a form (CSRF-checked): ``intent=signin`` or ``intent=attach``
    (signed in, with a recent sign-in; /account's form also takes the password)."""
    services = get_services(request)
    form = await read_form(request)
    intent = form.get("intent", 16) or "signin"
    if intent == "signin":
        return begin_trip(services, intent="signin", next_url=safe_next(form.get("next")))
    if intent != "attach":
        return message(
            request,
            "Unknown request",
            "This sign-in with Amazon was not understood. Nothing was changed.",
            status_code=400,
        )
    async with request_context(request).transaction() as tx:
        caller = await optional_browser_caller(tx, request)
    if caller is None:
        return RedirectResponse("/signin?next=/account", status_code=303)
    if not recently_authenticated(caller.session, services.deps):
        return to_account(amazon_error="reauth")
    return begin_attach(services, caller.session.id)


@router.get(CALLBACK_PATH)
async def callback(request: Request) -> Response:
    services = get_services(request)
    response = await _callback(request, services)
    # Single use: whatever happened, this trip to Amazon is over.
    cookies.clear(response, services.settings, cookies.OAUTH_COOKIE)
    return response


async def _callback(request: Request, services: Services) -> Response:
    params = request.query_params
    ctx = request_context(request)
    trip = cookies.read(
        request,
        services.settings,
        cookies.OAUTH_COOKIE,
        now=services.clock.now(),
        max_age=cookies.OAUTH_MAX_AGE,
    )
    state = params.get("state", "")
    if (
        trip is None
        or not isinstance(trip.get("state"), str)
        or not secrets.compare_digest(trip["state"].encode(), state.encode())
    ):
        async with ctx.transaction() as tx:
            amazon.audit_refusal(tx, "bad_state")
        return message(
            request,
            "Sign-in link expired",
            "This sign-in with Amazon expired or was already used. Please start again.",
            status_code=400,
        )
    intent = trip.get("intent")
    back = {"attach": "/account", "handoff": "/activate"}.get(str(intent), "/signin")
    if "error" in params:
        text = AMAZON_ERRORS.get(params["error"], DEFAULT_AMAZON_ERROR)
        return message(request, "Amazon sign-in did not complete", text, status_code=400, back=back)
    code = params.get("code", "")
    if not code or len(code) > 512:
        return message(
            request,
            "Amazon sign-in did not complete",
            DEFAULT_AMAZON_ERROR,
            status_code=400,
            back=back,
        )
    try:
        tokens = await amazon_client(services).exchange_code(
            code, redirect_uri=callback_uri(services), code_verifier=str(trip.get("verifier", ""))
        )
        profile = await verify_token(ctx, services, tokens.access_token)
    except AmazonError as error:
        return error_page(request, error, back=back)
    next_url = safe_next(trip.get("next"))
    if intent == "attach":
        return await _attach(request, ctx, services, profile, trip)
    if intent == "handoff":
        return await _handoff_proof(request, ctx, services, profile, trip)
    binding = secrets.token_urlsafe(32)
    try:
        async with ctx.transaction() as tx:
            outcome = await amazon.sign_in_with_profile(
                tx, profile, kind="browser", starter=amazon.Browser(binding)
            )
            if isinstance(outcome, amazon.SignedInWithAmazon):
                return await signed_in_response(request, services, tx, outcome.signed_in, next_url)
    except ServiceUnavailable:
        raise  # the database or Redis is down: the usual 503 page
    except LwaAccountsError as refused:
        return error_page(request, refused)
    linking = isinstance(outcome, amazon.LinkRequired)
    response = RedirectResponse(
        "/auth/amazon/link" if linking else "/auth/amazon/register", status_code=303
    )
    write_flow_cookie(response, services, outcome.flow_id, binding, next_url)
    return response


async def _attach(
    request: Request, ctx: Context, services: Services, profile: AmazonProfile, trip: dict[str, Any]
) -> Response:
    async with ctx.transaction() as tx:
        caller = await optional_browser_caller(tx, request)
    if caller is None:
        return RedirectResponse("/signin?next=/account", status_code=303)
    expected = trip.get("session")
    if not isinstance(expected, str) or not secrets.compare_digest(
        expected.encode(), session_digest(caller.session.id).encode()
    ):
        # Another session than the one that pressed "Link": link into nobody.
        async with ctx.transaction() as tx:
            amazon.audit_refusal(tx, "attach_session_changed")
        return to_account(amazon_error="failed")
    try:
        async with ctx.transaction() as tx:
            attached = await amazon.attach_amazon(
                tx,
                profile,
                session=caller.session,
                account=caller.account,
                password=None,
                rotate_session=True,
            )
            assert attached.signed_in is not None  # rotate_session=True
            return await signed_in_response(
                request, services, tx, attached.signed_in, "/account?amazon=linked"
            )
    except ReauthenticationRequired:
        return RedirectResponse("/account?amazon_error=reauth", status_code=303)
    except ServiceUnavailable:
        raise
    except LwaAccountsError as refused:
        key = {
            "amazon_linked_elsewhere": "linked-elsewhere",
            "already_linked": "already-linked",
        }.get(refused.code, "failed")
        return RedirectResponse(f"/account?amazon_error={key}", status_code=303)


async def _handoff_proof(
    request: Request, ctx: Context, services: Services, profile: AmazonProfile, trip: dict[str, Any]
) -> Response:
    """Back from Amazon on the phone: the same Amazon user as the TV's flow, or nothing."""
    grant_id, code = trip.get("grant"), trip.get("code")
    if not isinstance(grant_id, str) or not isinstance(code, str):
        return error_page(request, InvalidUserCode(), back="/activate")
    try:
        async with ctx.transaction() as tx:
            found = await handoff_by_grant(tx, grant_id=grant_id, code=code)
            if found is None:  # the code was used or expired meanwhile
                raise InvalidUserCode()
            _, flow = await handoff_flow(tx, found)
            proof = prove_amazon(tx, found, flow, profile)  # a mismatch: audited, raised
    except LwaAccountsError as refused:
        return error_page(request, refused, back="/activate")
    left = int((found.record.grant.expires_at - services.clock.now()).total_seconds())
    response = RedirectResponse("/activate/link", status_code=303)
    write_proof(response, services, proof, found.code, max_age=left)
    return response
