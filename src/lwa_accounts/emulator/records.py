"""The emulator's in-memory records: customers, clients, tokens, codes, faults, sessions."""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from typing import Any, Literal

USER_ID_ALPHABET = string.ascii_uppercase + string.digits
USER_CODE_ALPHABET = string.ascii_uppercase + string.digits

CodePairStatus = Literal["pending", "approved", "denied", "spent"]


def new_user_id() -> str:
    return "amzn1.account." + "".join(secrets.choice(USER_ID_ALPHABET) for _ in range(28))


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(6))


def normalise_user_code(value: str) -> str:
    """Codes are case-insensitive; people also type spaces and dashes."""
    return "".join(ch for ch in value.upper() if ch.isalnum())


def app_id_for(client_id: str) -> str:
    # A stable security-profile id per client, shaped like Amazon's.
    return "amzn1.application." + hashlib.sha256(client_id.encode()).hexdigest()[:32]


def token_key(token: str) -> str:
    """Tokens are stored by hash, so a dump of the state holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_access_token() -> str:
    return "Atza|" + secrets.token_urlsafe(300)  # 400+ characters, like Amazon's (>= 350)


def new_refresh_token() -> str:
    return "Atzr|" + secrets.token_urlsafe(300)


@dataclass
class Customer:
    user_id: str
    name: str
    email: str
    password: str
    postal_code: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "postal_code": self.postal_code,
        }


@dataclass
class Client:
    client_id: str
    client_secret: str | None
    redirect_uris: list[str]
    allowed_scopes: frozenset[str]
    name: str

    @property
    def app_id(self) -> str:
        return app_id_for(self.client_id)

    def public(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "has_secret": self.client_secret is not None,
            "redirect_uris": list(self.redirect_uris),
            "allowed_scopes": sorted(self.allowed_scopes),
            "name": self.name,
            "app_id": self.app_id,
        }


@dataclass
class AccessToken:
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float


@dataclass
class RefreshToken:
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    via_device: bool  # device-flow refresh tokens refresh without a client secret


@dataclass
class AuthorizationCode:
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass
class CodePair:
    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    scope_data: str | None
    expires_at: float
    status: CodePairStatus = "pending"
    user_id: str | None = None
    last_poll_at: float | None = None


@dataclass
class AuthorizeRequest:
    """A validated /ap/oa request waiting for the person to sign in and consent."""

    request_id: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass
class BrowserSession:
    """Who is signed in at the emulated Amazon, in one browser (cookie = random id)."""

    session_id: str
    csrf_token: str
    user_id: str | None = None
    user_code: str | None = None  # the TV code this browser is approving on /code
    expires_at: float = 0.0
