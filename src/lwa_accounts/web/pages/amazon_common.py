"""What the Amazon pages share: the trip to Amazon, message pages, the signed-in answer,
and the browser's pending flow (its signed cookie)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.core.models import PendingFlow
from lwa_accounts.errors import FlowExpired, FlowNotFound, LwaAccountsError
from lwa_accounts.flows import amazon
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.sessions import SignedIn, end_session
from lwa_accounts.lwa.protocol import code_challenge_s256, new_code_verifier
from lwa_accounts.web import amazon_cookies as cookies
from lwa_accounts.web.amazon_edge import amazon_client
from lwa_accounts.web.auth import optional_browser_caller
from lwa_accounts.web.cookies import set_session_cookie
from lwa_accounts.web.headers import CONTENT_SECURITY_POLICY
from lwa_accounts.web.services import Services
from lwa_accounts.web.templating import render

CALLBACK_PATH = "/auth/amazon/callback"

Intent = Literal["signin", "attach", "handoff"]


def callback_uri(services: Services) -> str:
    return services.settings.public_url.rstrip("/") + CALLBACK_PATH


def message(
    request: Request,
    title: str,
    text: str,
    *,
    status_code: int,
    retry_after: int | None = None,
    back: str = "/signin",
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return render(
        request,
        "amazon/message.html",
        {"title": title, "message": text, "back": back},
        status_code=status_code,
        headers=headers,
    )


def error_page(request: Request, error: LwaAccountsError, *, back: str = "/signin") -> Response:
    return message(
        request,
        error.title,
        error.detail,
        status_code=error.status,
        retry_after=error.retry_after,
        back=back,
    )


def to_account(**query: str) -> Response:
    return RedirectResponse("/account?" + urlencode(query), status_code=303)


async def signed_in_response(
    request: Request, services: Services, tx: Tx, signed_in: SignedIn, next_url: str
) -> Response:
    """End the browser's previous session, set the new one, clear the flow cookie."""
    previous = await optional_browser_caller(tx, request)
    if previous is not None and previous.session.id != signed_in.session.id:
        await end_session(tx, previous.session)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, signed_in, services.settings, now=services.clock.now())
    cookies.clear(response, services.settings, cookies.FLOW_COOKIE)
    return response


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


def session_digest(session_id: str) -> str:
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
        redirect_uri=callback_uri(services),
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


def begin_attach(services: Services, session_id: str) -> Response:
    # Bound to the session that asked: the callback links only into that same session.
    return begin_trip(
        services,
        intent="attach",
        next_url="/account",
        extra={"session": session_digest(session_id)},
    )


def write_flow_cookie(
    response: Response, services: Services, flow_id: str, binding: str, next_url: str
) -> None:
    cookies.write(
        response,
        services.settings,
        cookies.FLOW_COOKIE,
        {"flow": flow_id, "binding": binding, "next": next_url},
        now=services.clock.now(),
        max_age=services.settings.flow_ttl_seconds,
    )


def flow_cookie(request: Request, services: Services) -> dict[str, Any]:
    """This browser's pending flow cookie (id, binding, next), or FlowExpired."""
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
        raise FlowExpired()
    return data


async def pending(
    request: Request, services: Services, tx: Tx
) -> tuple[dict[str, Any], PendingFlow]:
    """The cookie and the live flow it names (FlowExpired / FlowNotFound otherwise)."""
    data = flow_cookie(request, services)
    return data, await amazon.get_flow(tx, data["flow"], amazon.Browser(data["binding"]))


def flow_gone(request: Request, services: Services, error: LwaAccountsError) -> Response:
    if not isinstance(error, FlowExpired | FlowNotFound):
        return error_page(request, error)
    response = message(
        request,
        "This step expired",
        "This sign-in step expired or was already used. Please sign in with Amazon again.",
        status_code=410,
    )
    cookies.clear(response, services.settings, cookies.FLOW_COOKIE)
    return response
