"""The browser's cookies: the session (HttpOnly, SameSite=Lax, Secure outside development)
and the known-device proof (the same, ``__Host-`` prefixed with secure cookies, kept
across sign-outs: it says this browser signed in before, ``flows/known_devices.py``)."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.settings import Settings

DEVICE_COOKIE_NAME = "lwa_device"
SECURE_DEVICE_COOKIE_NAME = "__Host-lwa_device"
# API clients send their proof in this header (or as `device_token` on sign-in).
DEVICE_HEADER = "Lwa-Device-Token"
_PROOF_MAX = 1024  # a proof is ~150 characters; anything longer is not one


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
