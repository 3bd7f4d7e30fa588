"""The browser session cookie: HttpOnly, SameSite=Lax, Secure outside development."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.settings import Settings


def session_token(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(settings.session_cookie_name) or None


def set_session_cookie(
    response: Response, signed_in: SignedIn, settings: Settings, *, now: datetime
) -> None:
    """The browser's session cookie for a new sign-in."""
    # Max-Age tracks the absolute expiry; the server-side session is the real authority.
    expires_at = signed_in.session.absolute_expires_at
    max_age = max(0, int((expires_at - now).total_seconds()))
    response.set_cookie(
        settings.session_cookie_name,
        signed_in.token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.session_cookie_name,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
