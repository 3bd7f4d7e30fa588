"""Short-lived signed cookies of the Amazon web flow.

- ``lwa_amazon_oauth``: the ``state``, PKCE ``code_verifier``, ``next`` and intent of one
  trip to Amazon, with what the intent is bound to (an attach: the session that asked; a
  phone's hand-off proof: the hand-off row; security.md items 4, 5, 14b and 20). It binds
  the callback to the browser that started it, lives 10 minutes, and is cleared by the
  callback (single use; Amazon's authorization code is single use too, so a replayed
  callback fails either way).
- ``lwa_amazon_flow``: the id of this browser's pending link / registration flow and the
  browser's binding secret (the flow record stores only hashes of both), plus ``next``.

Both are HttpOnly, SameSite=Lax (the callback is a top-level GET from Amazon, which Lax
allows), Secure outside development, and scoped to ``/auth/amazon``. They are signed by
``signing.py`` (itsdangerous: timestamped, a key per purpose, key rotation), with the cookie's
name as the purpose, so one can never pass for the other, a CSRF token or other signed data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lwa_accounts import signing
from lwa_accounts.settings import Settings

OAUTH_COOKIE = "lwa_amazon_oauth"
FLOW_COOKIE = "lwa_amazon_flow"
COOKIE_PATH = "/auth/amazon"
OAUTH_MAX_AGE = 600
COOKIE_MAX = 3000


def _purpose(name: str) -> str:
    return "amazon-cookie " + name


def sign(settings: Settings, purpose: str, data: dict[str, Any], *, now: datetime) -> str:
    return signing.dumps(settings, _purpose(purpose), data, now=now)


def verify(
    settings: Settings, purpose: str, value: str | None, *, now: datetime, max_age: int
) -> dict[str, Any] | None:
    """The signed data, or None when missing, tampered with or older than ``max_age``."""
    if not value or len(value) > COOKIE_MAX:
        return None
    return signing.loads(settings, _purpose(purpose), value, now=now, max_age=max_age)


def read(
    request: Request, settings: Settings, name: str, *, now: datetime, max_age: int
) -> dict[str, Any] | None:
    return verify(settings, name, request.cookies.get(name), now=now, max_age=max_age)


def write(
    response: Response,
    settings: Settings,
    name: str,
    data: dict[str, Any],
    *,
    now: datetime,
    max_age: int,
) -> None:
    response.set_cookie(
        name,
        sign(settings, name, data, now=now),
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path=COOKIE_PATH,
    )


def clear(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name, httponly=True, samesite="lax", secure=settings.secure_cookies, path=COOKIE_PATH
    )
