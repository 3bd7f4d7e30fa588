"""CSRF protection: a signed double-submit token.

A random nonce lives in an HttpOnly cookie; every form carries HMAC(secret, nonce). A
cross-site page can neither read the cookie nor compute the HMAC, and it works before
anyone signs in (sign-in and registration forms are protected too).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from lwa_accounts.errors import CsrfFailed
from lwa_accounts.settings import Settings

COOKIE_NAME = "lwa_csrf"
FIELD_NAME = "csrf_token"
_NONCE_BYTES = 32


def nonce_for(request: Request) -> tuple[str, bool]:
    """The visitor's nonce, and whether it is new (and so must be set as a cookie)."""
    existing = request.cookies.get(COOKIE_NAME, "")
    if _well_formed(existing):
        return existing, False
    cached: str | None = getattr(request.state, "csrf_nonce", None)
    if cached is None:
        cached = secrets.token_urlsafe(_NONCE_BYTES)
        request.state.csrf_nonce = cached
    return cached, True


def token_for(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def verify(request: Request, submitted: object, settings: Settings) -> None:
    """Raise CsrfFailed unless ``submitted`` is the token for the cookie's nonce."""
    nonce = request.cookies.get(COOKIE_NAME, "")
    if not _well_formed(nonce) or not isinstance(submitted, str):
        raise CsrfFailed()
    if not hmac.compare_digest(token_for(settings.secret, nonce), submitted):
        raise CsrfFailed()


def set_cookie(response: Response, nonce: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE_NAME,
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
