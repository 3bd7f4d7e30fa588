"""CSRF protection: a signed double-submit token, compared as bytes (any input is a 403).

A random nonce lives in an HttpOnly cookie; every form carries a token signed by
``signing.py`` (itsdangerous, purpose ``csrf``, timestamped, key rotation) over a digest of
the nonce and of the browser's session cookie (empty before sign-in). A cross-site page can
neither read the cookies nor sign; it works before anyone signs in (sign-in and registration
forms are protected too); a token obtained in one session is worthless in another, even if
an attacker manages to plant the nonce cookie; and a form older than ``TOKEN_MAX_AGE`` is
refused ("Form expired": reload it).
With secure cookies the nonce cookie is ``__Host-`` prefixed, which browsers refuse to
accept from a sibling subdomain or over plain HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from lwa_accounts import signing
from lwa_accounts.compare import same_secret
from lwa_accounts.errors import CsrfFailed
from lwa_accounts.settings import Settings

COOKIE_NAME = "lwa_csrf"
SECURE_COOKIE_NAME = "__Host-lwa_csrf"
FIELD_NAME = "csrf_token"
_NONCE_BYTES = 32
_PURPOSE = "csrf"
# A form rendered longer ago than a browser session's default idle time is stale.
TOKEN_MAX_AGE = 12 * 3600


def cookie_name(settings: Settings) -> str:
    return SECURE_COOKIE_NAME if settings.secure_cookies else COOKIE_NAME


def nonce_for(request: Request, settings: Settings) -> tuple[str, bool]:
    """The visitor's nonce, and whether it is new (and so must be set as a cookie)."""
    existing = request.cookies.get(cookie_name(settings), "")
    if _well_formed(existing):
        return existing, False
    cached: str | None = getattr(request.state, "csrf_nonce", None)
    if cached is None:
        cached = secrets.token_urlsafe(_NONCE_BYTES)
        request.state.csrf_nonce = cached
    return cached, True


def _binding(request: Request, nonce: str, settings: Settings) -> str:
    """What a token vouches for: this nonce and the browser's current session cookie."""
    session = request.cookies.get(settings.session_cookie_name, "")
    session_digest = hashlib.sha256(session.encode()).hexdigest() if session else ""
    digest = hashlib.sha256(f"csrf:{nonce}:{session_digest}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_for(request: Request, nonce: str, settings: Settings, *, now: datetime) -> str:
    """The form token for this nonce and the browser's current session cookie."""
    return signing.sign(settings, _PURPOSE, _binding(request, nonce, settings), now=now)


def verify(request: Request, submitted: object, settings: Settings, *, now: datetime) -> None:
    """Raise CsrfFailed unless ``submitted`` is a recent token for the cookies as sent."""
    nonce = request.cookies.get(cookie_name(settings), "")
    if not _well_formed(nonce):
        raise CsrfFailed()
    vouched = signing.unsign(settings, _PURPOSE, submitted, now=now, max_age=TOKEN_MAX_AGE)
    if vouched is None or not same_secret(_binding(request, nonce, settings), vouched):
        raise CsrfFailed()


def set_cookie(response: Response, nonce: str, settings: Settings) -> None:
    response.set_cookie(
        cookie_name(settings),
        nonce,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def _well_formed(nonce: str) -> bool:
    return (
        32 <= len(nonce) <= 64
        and nonce.isascii()
        and nonce.replace("-", "").replace("_", "").isalnum()
    )
