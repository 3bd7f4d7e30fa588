"""The browser's cookies: the session (HttpOnly, SameSite=Lax, Secure outside development);
the known-device proof (the same, ``__Host-`` prefixed with secure cookies, kept across
sign-outs: this browser proved the password before, so it keeps a throttle budget of its
own, ``flows/known_devices.py``); and the "known browser" memory that outlives sessions
too (``flows/new_devices.py``: which accounts signed in on this browser, so a sign-in from
it is no "new device")."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from lwa_accounts.flows import new_devices
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.settings import Settings

DEVICE_COOKIE_NAME = "lwa_device"
SECURE_DEVICE_COOKIE_NAME = "__Host-lwa_device"
# API clients send their proof in this header (or as `device_token` on sign-in).
DEVICE_HEADER = "Lwa-Device-Token"
_PROOF_MAX = 1024  # a proof is ~150 characters; anything longer is not one
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
            max_age=new_devices.MAX_AGE,
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


def device_cookie_name(settings: Settings) -> str:
    # Browsers refuse a __Host- cookie without Secure (plain-HTTP development).
    return SECURE_DEVICE_COOKIE_NAME if settings.secure_cookies else DEVICE_COOKIE_NAME


def presented_device_proof(request: Request, settings: Settings) -> str | None:
    """The known-device proof the client sent (the header first, then the cookie),
    unverified."""
    value = request.headers.get(DEVICE_HEADER) or request.cookies.get(device_cookie_name(settings))
    return value if value and len(value) <= _PROOF_MAX else None


def set_device_cookie(response: Response, proof: str, settings: Settings) -> None:
    """Remember this browser as a known device of the account it signed in to."""
    response.set_cookie(
        device_cookie_name(settings),
        proof,
        max_age=settings.known_device_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
