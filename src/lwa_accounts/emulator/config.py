"""What an emulated Amazon looks like: its seed customers, clients and protocol switches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lwa_accounts.errors import EmulatorRefused

# Scopes Login with Amazon knows (lwa-protocol.md sections 1.1 and 2.1); `alexa:all` is what
# AVS devices ask for.
KNOWN_SCOPES: frozenset[str] = frozenset({"profile", "profile:user_id", "postal_code", "alexa:all"})
DEFAULT_CLIENT_SCOPES: tuple[str, ...] = ("profile", "profile:user_id", "postal_code")


@dataclass(frozen=True)
class CustomerSeed:
    """An Amazon customer the emulator knows at start (and again after a reset)."""

    name: str
    email: str
    password: str
    postal_code: str | None = None
    user_id: str | None = None


DEMO_CUSTOMERS: tuple[CustomerSeed, ...] = (
    CustomerSeed(
        name="Ada Lovelace",
        email="ada@example.com",
        password="ada-demo-password",  # noqa: S106 - shown on the sign-in page on purpose
        postal_code="98052",
        user_id="amzn1.account.ADALOVELACE0000000000000DEMO",
    ),
    CustomerSeed(
        name="Grace Hopper",
        email="grace@example.com",
        password="grace-demo-password",  # noqa: S106 - shown on the sign-in page on purpose
        postal_code="10001",
        user_id="amzn1.account.GRACEHOPPER0000000000000DEMO",
    ),
)


@dataclass
class EmulatorConfig:
    """Settings of one emulator instance. Defaults reproduce Amazon as recorded."""

    # Redirect URIs registered for the default web client (the main app passes its callback).
    web_redirect_uris: list[str] = field(default_factory=list)
    customers: list[CustomerSeed] = field(default_factory=lambda: list(DEMO_CUSTOMERS))
    # Amazon tolerates 5 s polls against a 30 s interval, so slow_down is off by default.
    enforce_poll_interval: bool = False
    min_poll_interval: int | None = None  # None: the advertised `interval`
    code_pair_expires_in: int = 600
    interval: int = 30
    access_token_lifetime: int = 3600
    authorization_code_lifetime: int = 300
    expired_code_pair_error: Literal["invalid_code_pair", "expired_token"] = "invalid_code_pair"
    # Unconfirmed behaviours (lwa-protocol.md, open questions) as switches.
    accept_device_code_urn: bool = False
    poll_requires_user_code: bool = True
    rotate_refresh_tokens: bool = False
    pkce_without_secret: bool = False
    issuer: str = "https://www.amazon.com"
    # The environment the emulator runs in; "production" is refused.
    environment: str = "development"

    @property
    def effective_min_poll_interval(self) -> int:
        return self.interval if self.min_poll_interval is None else self.min_poll_interval


def refuse_in_production(environment: str) -> None:
    """Raise EmulatorRefused when asked to run in production (callable by the main app)."""
    if environment == "production":
        raise EmulatorRefused(
            "The Amazon emulator does not run when LWA_ACCOUNTS_ENV=production: "
            "configure a real Login with Amazon client instead."
        )
