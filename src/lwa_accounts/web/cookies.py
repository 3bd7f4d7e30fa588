"""The browser session cookie: HttpOnly, SameSite=Lax, Secure outside development; and
the "known browser" cookie that outlives it (``flows/known_devices.py``: which accounts
signed in on this browser, so a sign-in from it is no "new device")."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from lwa_accounts.flows import known_devices
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.settings import Settings

KNOWN_BROWSER_COOKIE = "lwa_known_browser"
SECURE_KNOWN_BROWSER_COOKIE = "__Host-lwa_known_browser"


def session_token(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(settings.session_cookie_name) or None


def known_browser_cookie_name(settings: Settings) -> str:
    return SECURE_KNOWN_BROWSER_COOKIE if settings.secure_cookies else KNOWN_BROWSER_COOKIE


def known_browser(request: Request, settings: Settings) -> str | None:
    """The known-browser memory as sent (the flow checks its signature)."""
    return request.cookies.get(known_browser_cookie_name(settings)) or None


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
    if signed_in.browser_memory is not None:
        # Kept across sign-outs: it is the memory of the browser, not of the session.
        response.set_cookie(
            known_browser_cookie_name(settings),
            signed_in.browser_memory,
            max_age=known_devices.MAX_AGE,
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
