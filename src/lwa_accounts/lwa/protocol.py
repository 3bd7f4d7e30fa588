"""Login with Amazon on the wire, sans I/O: build requests, parse responses into values.

Nothing here performs I/O or imports an HTTP library; ``client.py`` moves the bytes. Every
quirk follows ../shared/lwa-protocol.md: ``grant_type=device_code`` with ``user_code`` and no
client id, ``expires_in`` as a number or a string, tokeninfo ``exp`` as seconds remaining,
``InvalidValue``, ``invalid_code_pair`` and the legacy ``{"Profile": {...}}`` profile.

Malformed bodies from Amazon (not JSON, wrong types, missing fields) raise
``AmazonUnavailable``: that is Amazon's fault, not the caller's, and the sign-in must fail
closed with a retryable error instead of crashing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from lwa_accounts.core.models import CodePair, OAuthErrorReply, TokenSet
from lwa_accounts.errors import AmazonUnavailable
from lwa_accounts.settings import Settings

USER_ID_RE = re.compile(r"amzn1\.account\.[A-Z0-9]+")
PKCE_VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded;charset=UTF-8"


# ---- endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorize: str
    token: str
    codepair: str
    tokeninfo: str
    profile: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Endpoints:
        """Region defaults, the two URL overrides, or the embedded emulator (settings decide)."""
        api = settings.amazon_api_url
        return cls(
            authorize=settings.amazon_authorize_url,
            token=f"{api}/auth/o2/token",
            codepair=f"{api}/auth/o2/create/codepair",
            tokeninfo=f"{api}/auth/o2/tokeninfo",
            profile=f"{api}/user/profile",
        )


# ---- PKCE --------------------------------------------------------------------------------


def new_code_verifier(nbytes: int = 48) -> str:
    """A random PKCE verifier: 43-128 unreserved characters (RFC 7636 section 4.1)."""
    if not 32 <= nbytes <= 96:
        raise ValueError("a PKCE verifier needs 32 to 96 random bytes (43-128 characters)")
    return secrets.token_urlsafe(nbytes)


def code_challenge_s256(verifier: str) -> str:
    if not PKCE_VERIFIER_RE.fullmatch(verifier):
        raise ValueError("a PKCE verifier is 43-128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# ---- requests ----------------------------------------------------------------------------


def authorize_url(
    base: str,
    *,
    client_id: str,
    scope: str,
    redirect_uri: str,
    state: str,
    code_challenge: str,
    scope_data: Mapping[str, Any] | None = None,
) -> str:
    """The browser redirect to ``/ap/oa`` (authorization code grant, PKCE S256)."""
    params = {
        "client_id": client_id,
        "scope": scope,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": code_challenge,
        # Amazon defaults to "plain" when the method is left out: always say S256.
        "code_challenge_method": "S256",
    }
    if scope_data is not None:
        params["scope_data"] = json.dumps(scope_data, separators=(",", ":"))
    separator = "&" if "?" in base else "?"
    return base + separator + urlencode(params)


def authorization_code_form(
    *, code: str, redirect_uri: str, client_id: str, client_secret: str, code_verifier: str
) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": code_verifier,
    }
    if client_secret:
        form["client_secret"] = client_secret
    return form


def refresh_form(
    *, refresh_token: str, client_id: str, client_secret: str | None = None
) -> dict[str, str]:
    """Device (CBL) clients refresh with the client id only, no secret."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    if client_secret:
        form["client_secret"] = client_secret
    return form


def refresh_signed_out(reply: OAuthErrorReply) -> bool:
    """Whether a refused refresh means "signed out at Amazon" rather than a fault of ours:
    ``invalid_grant`` is Amazon's answer once the customer removed the app or the device
    was deregistered (lwa-protocol.md 2.4 and 5). ``invalid_client`` and the rest say our
    request or configuration is wrong."""
    return reply.error == "invalid_grant"


def code_pair_form(
    *, client_id: str, scope: str, scope_data: Mapping[str, Any] | None = None
) -> dict[str, str]:
    form = {"response_type": "device_code", "client_id": client_id, "scope": scope}
    if scope_data is not None:
        form["scope_data"] = json.dumps(scope_data, separators=(",", ":"))
    return form


def device_token_form(*, device_code: str, user_code: str) -> dict[str, str]:
    """Amazon's poll: literally ``device_code`` (not the RFC 8628 URN), both codes, no client."""
    return {"grant_type": "device_code", "device_code": device_code, "user_code": user_code}


# ---- response values ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenInfo:
    aud: str
    user_id: str
    exp: int  # seconds remaining, NOT an epoch time
    iss: str | None = None
    app_id: str | None = None
    iat: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    name: str | None = None
    email: str | None = None
    postal_code: str | None = None


# ---- parsing -----------------------------------------------------------------------------


def _malformed(what: str) -> AmazonUnavailable:
    return AmazonUnavailable(f"Amazon sent a malformed {what}.")


def decode_json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _malformed(what) from None
    if not isinstance(value, dict):
        raise _malformed(what)
    return value


def _str(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise _malformed(what)
    return value


def _opt_str(data: Mapping[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _malformed(what)
    return value


def _int(value: object, what: str) -> int:
    """A JSON number or a numeric string (Amazon's docs show ``"expires_in":"3600"``)."""
    if isinstance(value, bool):
        raise _malformed(what)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,12}", value.strip()):
        return int(value.strip())
    raise _malformed(what)


def is_valid_user_id(user_id: str) -> bool:
    return USER_ID_RE.fullmatch(user_id) is not None


def _user_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not is_valid_user_id(value):
        raise _malformed(what)
    return value


def parse_error(status: int, body: bytes) -> OAuthErrorReply:
    """Any non-2xx answer. A body that is not an OAuth error keeps the status only."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]:
        description = data.get("error_description")
        return OAuthErrorReply(
            status, data["error"], description if isinstance(description, str) else ""
        )
    return OAuthErrorReply(status, "")


def parse_token_response(body: bytes) -> TokenSet:
    what = "token response"
    data = decode_json_object(body, what)
    token_type = _str(data, "token_type", what)
    if token_type.lower() != "bearer":
        raise _malformed(what)
    expires_in = _int(data.get("expires_in"), what)
    if expires_in <= 0:
        raise _malformed(what)
    return TokenSet(
        access_token=_str(data, "access_token", what),
        token_type="bearer",  # noqa: S106 (a token type, not a secret)
        expires_in=expires_in,
        refresh_token=_opt_str(data, "refresh_token", what) or None,
        scope=_opt_str(data, "scope", what) or None,
    )


def parse_code_pair(body: bytes) -> CodePair:
    what = "code pair"
    data = decode_json_object(body, what)
    expires_in = _int(data.get("expires_in"), what)
    # ``interval`` is optional for Amazon's own SDKs; 30 s is Amazon's documented value.
    interval = _int(data["interval"], what) if data.get("interval") is not None else 30
    if expires_in <= 0 or interval < 0:
        raise _malformed(what)
    return CodePair(
        user_code=_str(data, "user_code", what),
        device_code=_str(data, "device_code", what),
        verification_uri=_str(data, "verification_uri", what),
        expires_in=expires_in,
        interval=interval,
    )


def parse_token_info(body: bytes) -> TokenInfo:
    what = "tokeninfo response"
    data = decode_json_object(body, what)
    iat = data.get("iat")
    return TokenInfo(
        aud=_str(data, "aud", what),
        user_id=_user_id(data.get("user_id"), what),
        exp=_int(data.get("exp"), what),
        iss=_opt_str(data, "iss", what),
        app_id=_opt_str(data, "app_id", what),
        iat=None if iat is None else _int(iat, what),
    )


def parse_profile(body: bytes) -> Profile:
    """``/user/profile``, or the legacy ``{"Profile": {"CustomerId", "Name", "PrimaryEmail"}}``."""
    what = "profile"
    data = decode_json_object(body, what)
    legacy = data.get("Profile")
    if "user_id" not in data and legacy is not None:
        if not isinstance(legacy, dict):
            raise _malformed(what)
        return Profile(
            user_id=_user_id(legacy.get("CustomerId"), what),
            name=_opt_str(legacy, "Name", what) or None,
            email=_opt_str(legacy, "PrimaryEmail", what) or None,
            postal_code=_opt_str(legacy, "PostalCode", what) or None,
        )
    return Profile(
        user_id=_user_id(data.get("user_id"), what),
        name=_opt_str(data, "name", what) or None,
        email=_opt_str(data, "email", what) or None,
        postal_code=_opt_str(data, "postal_code", what) or None,
    )
