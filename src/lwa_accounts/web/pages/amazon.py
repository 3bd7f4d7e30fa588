"""The "Login with Amazon" web flow and the Amazon section of /account.

A trip to Amazon (``begin_trip``: state + PKCE S256, bound to this browser by a signed
single-use cookie) -> Amazon's /ap/oa -> /auth/amazon/callback (the code is exchanged
server-side with the client secret, the token verified: ``aud``, profile). What the
callback does depends on the trip's intent, fixed when the trip began:

- ``signin`` (``GET /auth/amazon/start``, the "Login with Amazon" link): signed in, or
  /auth/amazon/link (prove the local password of the account holding the email) or
  /auth/amazon/register (prefilled registration).
- ``attach`` (only from a CSRF-checked POST: the /account page's form to
  ``/account/amazon/link``, or ``POST /auth/amazon/start`` with ``intent=attach``; never a
  GET, security.md item 20): links this Amazon identity to the signed-in account, and only
  if the browser is still in the session that started the trip.
- ``handoff`` (from /activate's "Sign in with Amazon", a CSRF-checked POST): the phone
  proves the Amazon identity of a TV's pending link flow (security.md item 14b); a match
  leaves a short-lived signed proof cookie for /activate, a mismatch is refused and
  audited (flows/tv_handoff.py).

Every form carries a CSRF token; every sign-in gets a new session.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.core.models import AmazonProfile, PendingFlow
from lwa_accounts.errors import (
    AmazonError,
    FlowExpired,
    FlowNotFound,
    InvalidCredentials,
    InvalidUserCode,
    LwaAccountsError,
    ReauthenticationRequired,
    ValidationFailed,
)
from lwa_accounts.flows import amazon
from lwa_accounts.flows.accounts import (
    Refused,
    check_password,
    finish_reauthentication,
    recently_authenticated,
)
from lwa_accounts.flows.amazon import (
    Attached,
    LinkRequired,
    RegistrationForm,
    SignedInWithAmazon,
)
from lwa_accounts.flows.amazon_profile import available_username, username_base
from lwa_accounts.flows.sessions import SignedIn, end_session
from lwa_accounts.flows.tv_handoff import (
    AmazonProof,
    handoff_by_grant,
    handoff_flow_id,
    prove_amazon,
)
from lwa_accounts.lwa.protocol import code_challenge_s256, new_code_verifier
from lwa_accounts.interfaces import Stores
from lwa_accounts.web import amazon_cookies as cookies
from lwa_accounts.web.amazon_edge import amazon_client, verify_token
from lwa_accounts.web.auth import Caller, client_info, optional_browser_caller
from lwa_accounts.web.cookies import set_session_cookie
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.headers import CONTENT_SECURITY_POLICY
from lwa_accounts.web.redirects import safe_next
from lwa_accounts.web.services import Services, get_services
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

CALLBACK_PATH = "/auth/amazon/callback"

# What Amazon's error codes on the callback mean to a person.
AMAZON_ERRORS = {
    "access_denied": "You chose not to share your Amazon account with us. Nothing was changed.",
    "temporarily_unavailable": "Amazon is busy right now. Please try again in a moment.",
    "server_error": "Amazon had a problem signing you in. Please try again in a moment.",
}
DEFAULT_AMAZON_ERROR = "Amazon could not complete the sign-in. Please try again."


def _callback_uri(services: Services) -> str:
    return services.settings.public_url.rstrip("/") + CALLBACK_PATH


def _message(
    request: Request,
    title: str,
    message: str,
    *,
    status_code: int,
    retry_after: int | None = None,
    back: str = "/signin",
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return render(
        request,
        "amazon/message.html",
        {"title": title, "message": message, "back": back},
        status_code=status_code,
        headers=headers,
    )


def _error_page(request: Request, error: LwaAccountsError, *, back: str = "/signin") -> Response:
    return _message(
        request,
        error.title,
        error.detail,
        status_code=error.status,
        retry_after=error.retry_after,
        back=back,
    )


async def _signed_in_response(
    request: Request, services: Services, stores: Stores, signed_in: SignedIn, next_url: str
) -> Response:
    """End the browser's previous session, set the new one, clear the flow cookie."""
    previous = await optional_browser_caller(stores, request)
    if previous is not None and previous.session.id != signed_in.session.id:
        await end_session(
            stores, previous.session, client=client_info(request), clock=services.clock
        )
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(
        response,
        signed_in.token,
        signed_in.session.absolute_expires_at,
        services.settings,
        now=services.clock.now(),
    )
    cookies.clear(response, services.settings, cookies.FLOW_COOKIE)
    return response


# ---- start and callback ----

Intent = Literal["signin", "attach", "handoff"]
PROOF_COOKIE = "lwa_handoff_proof"
PROOF_PATH = "/activate"
PROOF_MAX_AGE = 600
PROOF_COOKIE_MAX = 1000


def amazon_form_headers(services: Services) -> dict[str, str]:
    """Headers for a page whose form starts a trip to Amazon.

    Chrome and Safari check a form's ``form-action`` against every redirect its submission
    leads to, so our ``form-action 'self'`` would stop the 303 to Amazon's sign-in page:
    such pages also allow exactly Amazon's authorization origin.
    """
    parts = urlsplit(services.settings.amazon_authorize_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    policy = CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origin}")
    return {"Content-Security-Policy": policy}


def _session_digest(session_id: str) -> str:
    return hashlib.sha256(b"attach-session:" + session_id.encode()).hexdigest()


def begin_trip(
    services: Services, *, intent: Intent, next_url: str, extra: dict[str, str] | None = None
) -> Response:
    """The 303 to Amazon, with this trip's single-use cookie (state, PKCE verifier, intent
    and what the intent is bound to)."""
    state = secrets.token_urlsafe(32)
    verifier = new_code_verifier()
    url = amazon_client(services).authorize_url(
        state=state,
        code_challenge=code_challenge_s256(verifier),
        redirect_uri=_callback_uri(services),
    )
    response = RedirectResponse(url, status_code=303)
    cookies.write(
        response,
        services.settings,
        cookies.OAUTH_COOKIE,
        {
            **(extra or {}),
            "state": state,
            "verifier": verifier,
            "next": next_url,
            "intent": intent,
        },
        now=services.clock.now(),
        max_age=cookies.OAUTH_MAX_AGE,
    )
    return response


def _begin_attach(services: Services, session_id: str) -> Response:
    # Bound to the session that asked: the callback links only into that same session.
    return begin_trip(
        services,
        intent="attach",
        next_url="/account",
        extra={"session": _session_digest(session_id)},
    )


@router.get("/auth/amazon/start")
async def start(request: Request) -> Response:
    """A plain sign-in only. Opening a link never attaches anything (security.md item
    20): ``intent=attach`` on a GET is refused."""
    services = get_services(request)
    if request.query_params.get("intent", "") not in ("", "signin"):
        return _message(
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
        return _message(
            request,
            "Unknown request",
            "This sign-in with Amazon was not understood. Nothing was changed.",
            status_code=400,
        )
    caller = await _signed_in_caller(request, services)
    if caller is None:
        return RedirectResponse("/signin?next=/account", status_code=303)
    if not recently_authenticated(caller.session, services.deps):
        return _to_account(amazon_error="reauth")
    return _begin_attach(services, caller.session.id)


@router.get(CALLBACK_PATH)
async def callback(request: Request) -> Response:
    services = get_services(request)
    response = await _callback(request, services)
    # Single use: whatever happened, this trip to Amazon is over.
    cookies.clear(response, services.settings, cookies.OAUTH_COOKIE)
    return response


async def _callback(request: Request, services: Services) -> Response:
    params = request.query_params
    client = client_info(request)
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
        async with services.database.transaction() as stores:
            await amazon.audit_refusal(stores, services.deps, "bad_state", client=client)
        return _message(
            request,
            "Sign-in link expired",
            "This sign-in with Amazon expired or was already used. Please start again.",
            status_code=400,
        )
    intent = trip.get("intent")
    back = {"attach": "/account", "handoff": "/activate"}.get(str(intent), "/signin")
    if "error" in params:
        message = AMAZON_ERRORS.get(params["error"], DEFAULT_AMAZON_ERROR)
        return _message(
            request, "Amazon sign-in did not complete", message, status_code=400, back=back
        )
    code = params.get("code", "")
    if not code or len(code) > 512:
        return _message(
            request,
            "Amazon sign-in did not complete",
            DEFAULT_AMAZON_ERROR,
            status_code=400,
            back=back,
        )
    try:
        tokens = await amazon_client(services).exchange_code(
            code, redirect_uri=_callback_uri(services), code_verifier=str(trip.get("verifier", ""))
        )
        profile = await verify_token(services, tokens.access_token, client)
    except AmazonError as error:
        return _error_page(request, error, back=back)
    next_url = safe_next(trip.get("next"))
    if intent == "attach":
        return await _attach(request, services, profile, trip)
    if intent == "handoff":
        return await _handoff_proof(request, services, profile, trip)
    binding = secrets.token_urlsafe(32)
    async with services.database.transaction() as stores:
        outcome = await amazon.sign_in_with_profile(
            stores, services.deps, profile, client=client, kind="browser", binding=binding
        )
        if isinstance(outcome, SignedInWithAmazon):
            return await _signed_in_response(request, services, stores, outcome.signed_in, next_url)
    if isinstance(outcome, Refused):
        return _error_page(request, outcome.error)
    page = "/auth/amazon/link" if isinstance(outcome, LinkRequired) else "/auth/amazon/register"
    response = RedirectResponse(page, status_code=303)
    cookies.write(
        response,
        services.settings,
        cookies.FLOW_COOKIE,
        {"flow": outcome.flow_id, "binding": binding, "next": next_url},
        now=services.clock.now(),
        max_age=services.settings.flow_ttl_seconds,
    )
    return response


async def _attach(
    request: Request, services: Services, profile: AmazonProfile, trip: dict[str, Any]
) -> Response:
    client = client_info(request)
    async with services.database.transaction() as stores:
        caller = await optional_browser_caller(stores, request)
    if caller is None:
        return RedirectResponse("/signin?next=/account", status_code=303)
    expected = trip.get("session")
    if not isinstance(expected, str) or not secrets.compare_digest(
        expected.encode(), _session_digest(caller.session.id).encode()
    ):
        # Another session than the one that pressed "Link": link into nobody.
        async with services.database.transaction() as stores:
            await amazon.audit_refusal(
                stores, services.deps, "attach_session_changed", client=client
            )
        return _to_account(amazon_error="failed")
    try:
        async with services.database.transaction() as stores:
            outcome = await amazon.attach_amazon(
                stores,
                services.deps,
                profile,
                session=caller.session,
                account=caller.account,
                password=None,
                client=client,
                rotate_session=True,
            )
            if isinstance(outcome, Attached) and outcome.signed_in is not None:
                return await _signed_in_response(
                    request, services, stores, outcome.signed_in, "/account?amazon=linked"
                )
    except ReauthenticationRequired:
        return RedirectResponse("/account?amazon_error=reauth", status_code=303)
    assert isinstance(outcome, Refused)
    key = {
        "amazon_linked_elsewhere": "linked-elsewhere",
        "already_linked": "already-linked",
    }.get(outcome.error.code, "failed")
    return RedirectResponse(f"/account?amazon_error={key}", status_code=303)


# ---- "finish on your phone": the phone proves the TV's Amazon identity ----


def write_proof(
    response: Response, services: Services, proof: AmazonProof, code: str, *, max_age: int
) -> None:
    """The proof, for /activate only: HttpOnly, SameSite=Lax (it is set on the answer to
    Amazon's top-level redirect), signed, and no longer-lived than the hand-off."""
    data = {
        "grant": proof.grant_id,
        "flow": proof.flow_id_hash,
        "amazon": proof.amazon_digest,
        "code": code,
    }
    response.set_cookie(
        PROOF_COOKIE,
        cookies.seal(services.settings, PROOF_COOKIE, data, now=services.clock.now()),
        max_age=max(1, min(max_age, PROOF_MAX_AGE)),
        httponly=True,
        samesite="lax",
        secure=services.settings.secure_cookies,
        path=PROOF_PATH,
    )


def read_proof(request: Request, services: Services) -> tuple[AmazonProof, str] | None:
    """This browser's proof and the hand-off code it was made for, if intact and recent."""
    value = request.cookies.get(PROOF_COOKIE)
    if not value or len(value) > PROOF_COOKIE_MAX or not value.isascii():
        return None
    data = cookies.unseal(
        services.settings, PROOF_COOKIE, value, now=services.clock.now(), max_age=PROOF_MAX_AGE
    )
    if data is None or not all(
        isinstance(data.get(key), str) for key in ("grant", "flow", "amazon", "code")
    ):
        return None
    proof = AmazonProof(
        grant_id=data["grant"], flow_id_hash=data["flow"], amazon_digest=data["amazon"]
    )
    return proof, data["code"]


def clear_proof(response: Response, services: Services) -> None:
    response.delete_cookie(
        PROOF_COOKIE,
        httponly=True,
        samesite="lax",
        secure=services.settings.secure_cookies,
        path=PROOF_PATH,
    )


async def _handoff_proof(
    request: Request, services: Services, profile: AmazonProfile, trip: dict[str, Any]
) -> Response:
    """Back from Amazon on the phone: the same Amazon user as the TV's flow, or nothing."""
    client = client_info(request)
    grant_id, code = trip.get("grant"), trip.get("code")
    if not isinstance(grant_id, str) or not isinstance(code, str):
        return _error_page(request, InvalidUserCode(), back="/activate")
    outcome: AmazonProof | PendingFlow | Refused = Refused(InvalidUserCode())
    try:
        async with services.database.transaction() as stores:
            found = await handoff_by_grant(
                stores.devices, services.clock, grant_id=grant_id, code=code
            )
            if found is not None:  # else the code was used or expired meanwhile
                outcome = await amazon.get_flow(
                    stores,
                    services.deps,
                    handoff_flow_id(services.settings, found),
                    binding=None,
                    client=client,
                )
            if found is not None and isinstance(outcome, PendingFlow):
                # Refusals are values: their audit lines commit with this transaction.
                outcome = await prove_amazon(
                    stores, services.deps, found, outcome, profile, client=client
                )
    except LwaAccountsError as gone:
        return _error_page(request, gone, back="/activate")
    if not isinstance(outcome, AmazonProof) or found is None:
        refusal = outcome.error if isinstance(outcome, Refused) else InvalidUserCode()
        return _error_page(request, refusal, back="/activate")
    left = int((found.record.grant.expires_at - services.clock.now()).total_seconds())
    response = RedirectResponse("/activate/link", status_code=303)
    write_proof(response, services, outcome, found.code, max_age=left)
    return response


# ---- pending flows: link and register ----


async def _pending(
    request: Request, services: Services, stores: Stores
) -> tuple[dict[str, Any], PendingFlow] | Refused:
    data = cookies.read(
        request,
        services.settings,
        cookies.FLOW_COOKIE,
        now=services.clock.now(),
        max_age=services.settings.flow_ttl_seconds,
    )
    if (
        data is None
        or not isinstance(data.get("flow"), str)
        or not isinstance(data.get("binding"), str)
    ):
        return Refused(FlowExpired())
    flow = await amazon.get_flow(
        stores,
        services.deps,
        data["flow"],
        binding=data["binding"],
        client=client_info(request),
    )
    if isinstance(flow, Refused):
        return flow
    return data, flow


def _flow_gone(request: Request, services: Services, error: LwaAccountsError) -> Response:
    if not isinstance(error, FlowExpired | FlowNotFound):
        return _error_page(request, error)
    response = _message(
        request,
        "This step expired",
        "This sign-in step expired or was already used. Please sign in with Amazon again.",
        status_code=410,
    )
    cookies.clear(response, services.settings, cookies.FLOW_COOKIE)
    return response


async def _link_page(
    request: Request,
    services: Services,
    stores: Stores,
    flow: PendingFlow,
    *,
    status_code: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    target = await stores.accounts.get(flow.target_account_id or "")
    return render(
        request,
        "amazon/link.html",
        {
            "email": target.email if target else None,
            "amazon_name": flow.profile.name,
            "can_register_instead": flow.can_register_instead
            and services.settings.amazon_signup != "closed",
            "error": error,
        },
        status_code=status_code,
        headers=headers,
    )


@router.get("/auth/amazon/link")
async def link_page(request: Request) -> Response:
    services = get_services(request)
    async with services.database.transaction() as stores:
        pending = await _pending(request, services, stores)
        if not isinstance(pending, Refused):
            _, flow = pending
            if flow.kind == "link":
                return await _link_page(request, services, stores, flow)
    if isinstance(pending, Refused):
        return _flow_gone(request, services, pending.error)
    return RedirectResponse("/auth/amazon/register", status_code=303)


@router.post("/auth/amazon/link")
async def link_submit(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    password = form.get("password", 1100)
    client = client_info(request)
    async with services.database.transaction() as stores:
        pending = await _pending(request, services, stores)
        if isinstance(pending, Refused):
            return _flow_gone(request, services, pending.error)
        data, flow = pending
        if flow.kind != "link":  # switched to "create a separate account": no password here
            return RedirectResponse("/auth/amazon/register", status_code=303)
        attempt = await amazon.begin_link(
            stores, services.deps, data["flow"], client=client, binding=data["binding"]
        )
    outcome: SignedInWithAmazon | amazon.FlowCompleted | Refused
    if isinstance(attempt, Refused):
        outcome = attempt
    else:
        # argon2 outside any transaction; finish_link re-checks the flow and the password.
        check = await amazon.check_link_password(services.deps, attempt, password, client=client)
        async with services.database.transaction() as stores:
            outcome = await amazon.finish_link(
                stores, services.deps, attempt, check, client=client, binding=data["binding"]
            )
            if isinstance(outcome, SignedInWithAmazon):
                return await _signed_in_response(
                    request, services, stores, outcome.signed_in, safe_next(data.get("next"))
                )
    assert isinstance(outcome, Refused)
    error = outcome.error
    if isinstance(error, FlowExpired | FlowNotFound):
        return _flow_gone(request, services, error)
    message = error.detail
    if isinstance(error, InvalidCredentials):
        left = error.extra.get("attempts_left")
        message = "The password is incorrect." + (
            f" {left} attempt{'s' if left != 1 else ''} left." if isinstance(left, int) else ""
        )
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    async with services.database.transaction() as stores:
        again = await _pending(request, services, stores)
        if isinstance(again, Refused):
            return _flow_gone(request, services, again.error)
        return await _link_page(
            request,
            services,
            stores,
            again[1],
            status_code=error.status,
            error=message,
            headers=headers,
        )


@router.post("/auth/amazon/separate")
async def separate_submit(request: Request) -> Response:
    """ "Create a separate account instead" on the link page (CSRF-checked): the link flow
    becomes a registration flow without the taken email, then the prefilled form."""
    services = get_services(request)
    await read_form(request)  # the CSRF check
    data = cookies.read(
        request,
        services.settings,
        cookies.FLOW_COOKIE,
        now=services.clock.now(),
        max_age=services.settings.flow_ttl_seconds,
    )
    if not (data and isinstance(data.get("flow"), str) and isinstance(data.get("binding"), str)):
        return _flow_gone(request, services, FlowExpired())
    async with services.database.transaction() as stores:
        switched = await amazon.switch_to_registration(
            stores,
            services.deps,
            data["flow"],
            client=client_info(request),
            binding=data["binding"],
        )
    if isinstance(switched, Refused):
        return _flow_gone(request, services, switched.error)
    return RedirectResponse("/auth/amazon/register?separate=1", status_code=303)


async def _register_page(
    request: Request,
    services: Services,
    stores: Stores,
    flow: PendingFlow,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    prefill, required = amazon.registration_fields(flow, services.deps)
    if form is None:
        suggestion = await available_username(stores, username_base(prefill.email, prefill.name))
        form = {
            "username": suggestion,
            "name": prefill.name or "",
            "email": prefill.email or "",
            "postal_code": prefill.postal_code or "",
        }
    return render(
        request,
        "amazon/register.html",
        {
            "form": form,
            "required": required,
            "show_postal_code": "postal_code" in required or bool(prefill.postal_code),
            "separate": flow.kind == "link" or request.query_params.get("separate") == "1",
            "errors": errors or {},
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/auth/amazon/register")
async def register_page(request: Request) -> Response:
    services = get_services(request)
    async with services.database.transaction() as stores:
        pending = await _pending(request, services, stores)
        if not isinstance(pending, Refused):
            flow = pending[1]
            if flow.kind == "link" and not flow.can_register_instead:
                return RedirectResponse("/auth/amazon/link", status_code=303)
            return await _register_page(request, services, stores, flow)
    return _flow_gone(request, services, pending.error)


@router.post("/auth/amazon/register")
async def register_submit(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    fields = {name: form.get(name, 300) for name in ("username", "name", "email", "postal_code")}
    shown = {key: value[:256] for key, value in fields.items()}
    async with services.database.transaction() as stores:
        pending = await _pending(request, services, stores)
    if isinstance(pending, Refused):
        return _flow_gone(request, services, pending.error)
    data, flow = pending
    errors: dict[str, str] = {}
    failure: LwaAccountsError | None = None
    if not fields["username"].strip():
        errors["username"] = "Choose a username."
    else:
        try:
            async with services.database.transaction() as stores:
                outcome = await amazon.complete_registration(
                    stores,
                    services.deps,
                    data["flow"],
                    RegistrationForm(
                        username=fields["username"],
                        name=fields["name"],
                        email=fields["email"] or None,
                        postal_code=fields["postal_code"] or None,
                    ),
                    client=client_info(request),
                    binding=data["binding"],
                )
                if isinstance(outcome, SignedInWithAmazon):
                    return await _signed_in_response(
                        request, services, stores, outcome.signed_in, safe_next(data.get("next"))
                    )
            assert isinstance(outcome, Refused)
            if isinstance(outcome.error, FlowExpired | FlowNotFound):
                return _flow_gone(request, services, outcome.error)
            return _error_page(request, outcome.error)
        except ValidationFailed as invalid:
            errors = invalid.errors
            failure = invalid
        except LwaAccountsError as conflict:
            field = {"username_taken": "username", "email_taken": "email"}.get(conflict.code)
            if field is None:
                return _error_page(request, conflict)
            errors = {field: conflict.detail}
            failure = conflict
    async with services.database.transaction() as stores:
        return await _register_page(
            request,
            services,
            stores,
            flow,
            form=shown,
            errors=errors,
            status_code=failure.status if failure else 422,
        )


# ---- /account: link and unlink ----


def _to_account(**query: str) -> Response:
    return RedirectResponse("/account?" + urlencode(query), status_code=303)


async def _signed_in_caller(request: Request, services: Services) -> Caller | None:
    async with services.database.transaction() as stores:
        return await optional_browser_caller(stores, request)


async def _confirm_recent(
    request: Request, services: Services, caller: Caller, password: str
) -> Response | SignedIn | None:
    """None when the session may change sign-in methods now (recent sign-in); after the
    password is given again, the browser's new session (the old one ended: no fixation),
    to be set as the cookie of the response; else the redirect that says why not."""
    if not password:
        if recently_authenticated(caller.session, services.deps):
            return None
        return _to_account(amazon_error="reauth")
    client = client_info(request)
    # argon2 outside any transaction, as on /signin.
    check = await check_password(
        services.deps,
        account=caller.account,
        account_key=caller.account.id,
        password=password,
        client=client,
    )
    async with services.database.transaction() as stores:
        outcome = await finish_reauthentication(
            stores, services.deps, check, session=caller.session, client=client
        )
    if isinstance(outcome, SignedIn):
        return outcome
    code = "too-many" if outcome.error.code == "too_many_attempts" else "wrong-password"
    return _to_account(amazon_error=code)


def _with_session(response: Response, services: Services, signed_in: SignedIn | None) -> Response:
    if signed_in is not None:
        set_session_cookie(
            response,
            signed_in.token,
            signed_in.session.absolute_expires_at,
            services.settings,
            now=services.clock.now(),
        )
    return response


@router.post("/account/amazon/link")
async def account_link(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    caller = await _signed_in_caller(request, services)
    if caller is None:
        return RedirectResponse("/signin?next=/account", status_code=303)
    confirmed = await _confirm_recent(request, services, caller, form.get("password", 1100))
    if isinstance(confirmed, Response):
        return confirmed
    # Straight to Amazon from this CSRF-checked POST, bound to the session that will be
    # current when Amazon sends the browser back (the new one if the password was given).
    session = confirmed.session if confirmed is not None else caller.session
    return _with_session(_begin_attach(services, session.id), services, confirmed)


@router.post("/account/amazon/unlink")
async def account_unlink(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    caller = await _signed_in_caller(request, services)
    if caller is None:
        return RedirectResponse("/signin?next=/account", status_code=303)
    confirmed = await _confirm_recent(request, services, caller, form.get("password", 1100))
    if isinstance(confirmed, Response):
        return confirmed
    session = confirmed.session if confirmed is not None else caller.session
    try:
        async with services.database.transaction() as stores:
            refused = await amazon.detach_amazon(
                stores,
                services.deps,
                session=session,
                account=caller.account,
                password=None,
                client=client_info(request),
            )
    except ReauthenticationRequired:
        return _with_session(_to_account(amazon_error="reauth"), services, confirmed)
    except LwaAccountsError:  # nothing linked (a second click): the page shows the truth
        return _with_session(_to_account(), services, confirmed)
    if refused is not None:
        return _with_session(_to_account(amazon_error="last-method"), services, confirmed)
    return _with_session(_to_account(amazon="unlinked"), services, confirmed)
