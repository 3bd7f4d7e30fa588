"""Who is calling: bearer tokens (devices) and session cookies (browsers)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from lwa_accounts.core.models import Account, Session
from lwa_accounts.errors import NotAuthenticated
from lwa_accounts.flows.context import Tx
from lwa_accounts.web.cookies import session_token
from lwa_accounts.web.observe import note_account
from lwa_accounts.web.services import client_info as client_info
from lwa_accounts.web.services import get_services

TOKEN_MAX = 256

# OpenAPI: routes that take a bearer token pass ``openapi_extra=BEARER_SECURITY``; the app
# declares the scheme (see ``app.py``), so /api/docs offers "Authorize".
BEARER_SCHEME_NAME = "BearerToken"
BEARER_SECURITY: dict[str, object] = {"security": [{BEARER_SCHEME_NAME: []}]}
BEARER_SCHEME: dict[str, object] = {
    "type": "http",
    "scheme": "bearer",
    "description": "The `session.token` from `POST /api/v1/sessions`.",
}


@dataclass(frozen=True, slots=True)
class Caller:
    session: Session
    account: Account
    via_cookie: bool


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > TOKEN_MAX:
        raise NotAuthenticated("Use 'Authorization: Bearer <token>'.")
    return token


async def authenticate(
    tx: Tx, request: Request, *, allow_cookie: bool, touch: bool = True
) -> Caller:
    """The live session behind the bearer token (or, when allowed, the session cookie).

    Cookies are allowed only where a cross-site request could not change anything (GET),
    because the JSON API has no CSRF token. ``touch=False`` (inside ``ctx.read()``): no
    write; the caller then runs ``flows.sessions.keep_alive`` after the read.
    """
    settings = get_services(request).settings
    token = bearer_token(request)
    via_cookie = False
    if token is None and allow_cookie:
        token = session_token(request, settings)
        via_cookie = token is not None
    if token is None:
        raise NotAuthenticated()
    resolved = await tx.sessions.resolve(token[:TOKEN_MAX], touch=touch)
    if resolved is None:
        raise NotAuthenticated("The session is unknown, expired or signed out.")
    session, account = resolved
    note_account(account.id)  # the request log's account_id
    return Caller(session=session, account=account, via_cookie=via_cookie)


async def optional_browser_caller(tx: Tx, request: Request) -> Caller | None:
    """The signed-in browser, if any (pages)."""
    settings = get_services(request).settings
    token = session_token(request, settings)
    if token is None:
        return None
    resolved = await tx.sessions.resolve(token[:TOKEN_MAX])
    if resolved is None:
        return None
    session, account = resolved
    note_account(account.id)
    request.state.account = account
    return Caller(session=session, account=account, via_cookie=True)
