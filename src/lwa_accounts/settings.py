"""Settings, read from the environment once (prefix ``LWA_ACCOUNTS_``).

Everything configurable lives here so that no other module reads ``os.environ``.
Amazon's base URLs are settings: that is how the emulator is plugged in.
"""

from __future__ import annotations

import ipaddress
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lwa_accounts.core.profile_sync import FIELD_POLICIES, FieldPolicy

Region = Literal["na", "eu", "fe"]

# Amazon's hosts per region (lwa-protocol.md section 0).
AUTHORIZE_URLS: dict[str, str] = {
    "na": "https://www.amazon.com/ap/oa",
    "eu": "https://eu.account.amazon.com/ap/oa",
    "fe": "https://apac.account.amazon.com/ap/oa",
}
API_URLS: dict[str, str] = {
    "na": "https://api.amazon.com",
    "eu": "https://api.amazon.co.uk",
    "fe": "https://api.amazon.co.jp",
}

# The embedded emulator's development client (see emulator/); used only when no real
# LWA client id is configured.
EMULATED_WEB_CLIENT_ID = "amzn1.application-oa2-client.devwebclient0000000000000000"
EMULATED_WEB_CLIENT_SECRET = "dev-web-client-secret-not-for-production"  # noqa: S105
EMULATED_DEVICE_CLIENT_ID = "amzn1.application-oa2-client.devdeviceclient00000000000000"
EMULATOR_MOUNT = "/_amazon"

CommaList = Annotated[tuple[str, ...], NoDecode]


def _field_policy(value: object, info: ValidationInfo) -> object:
    """One of ``never | fill_empty | always``; anything else refuses to start, naming the
    variable (pydantic's own message would name only the field)."""
    if value not in FIELD_POLICIES:
        variable = f"LWA_ACCOUNTS_{(info.field_name or '').upper()}"
        raise ValueError(f"{variable} must be one of {', '.join(FIELD_POLICIES)}, not {value!r}")
    return value


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Frozen settings. Build with ``Settings()`` (environment) or keyword overrides in tests."""

    model_config = SettingsConfigDict(env_prefix="LWA_ACCOUNTS_", frozen=True, extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None
    # PostgreSQL pool per process: enough kept open for the usual concurrency (16 requests
    # at once reuse connections instead of opening one each), a bounded overflow for bursts,
    # and connections replaced after an hour (instead of a ping before every checkout).
    db_pool_size: int = Field(default=20, gt=0)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_recycle_seconds: int = Field(default=3600, gt=0)
    secret_key: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8000"
    redis_url: str | None = None
    redis_key_prefix: str = "lwa-accounts"  # namespaces our keys (hosts sharing a Redis)
    log_level: str = "INFO"

    # Sessions. Browser sessions are short-lived; device (TV) sessions live long.
    session_cookie_name: str = "lwa_session"
    cookie_secure: bool | None = None  # None: Secure everywhere except development/test
    browser_session_idle_seconds: int = Field(default=12 * 3600, gt=0)
    browser_session_absolute_seconds: int = Field(default=14 * 24 * 3600, gt=0)
    device_session_idle_seconds: int = Field(default=90 * 24 * 3600, gt=0)
    device_session_absolute_seconds: int = Field(default=365 * 24 * 3600, gt=0)
    recent_auth_seconds: int = Field(default=300, gt=0)

    # Brute-force protection (``limits`` rate-limit strings, e.g. "5/15minutes").
    # Password attempts: tight for one account from one IP, looser for one IP against any
    # account, and for one account from every IP a tiered budget ("a;b": each tier must
    # have room, so a distributed guesser meets progressively longer waits) that is wide
    # enough for the owner to get in from their own address while someone guesses elsewhere.
    password_limit_per_account_ip: str = "5/15minutes"  # noqa: S105
    password_limit_per_ip: str = "30/15minutes"  # noqa: S105
    password_limit_per_account: str = "20/15minutes;100/day"  # noqa: S105
    registration_limit_per_ip: str = "20/hour"
    user_code_limit_per_ip: str = "20/10minutes"
    user_code_limit_per_code: str = "10/10minutes"  # lookups of one code (issue 6)
    device_start_limit_per_ip: str = "30/10minutes"  # new TV codes (each may ask Amazon)

    # Password hashing: argon2id, OWASP parameters (m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1

    # Login with Amazon. With no client id configured, the embedded emulator is used.
    lwa_client_id: str | None = None
    lwa_client_secret: SecretStr | None = None
    lwa_device_client_id: str | None = None
    lwa_allowed_client_ids: CommaList = ()
    lwa_region: Region = "na"
    lwa_api_url: str | None = None
    lwa_authorize_url: str | None = None
    lwa_scope: str = "profile postal_code"
    lwa_connect_timeout: float = Field(default=3.0, gt=0)
    lwa_read_timeout: float = Field(default=5.0, gt=0)
    lwa_deadline_seconds: float = Field(default=8.0, gt=0)
    lwa_max_connections: int = Field(default=20, gt=0)

    # What happens when an unseen Amazon user signs in.
    amazon_signup: Literal["auto", "form", "closed"] = "auto"
    amazon_required_fields: CommaList = ("email", "name")

    # Profile sync per field at Amazon sign-in, attach and link (security.md item 14):
    # never | fill_empty (only an empty local value) | always (follow Amazon).
    profile_sync_name: FieldPolicy = "fill_empty"
    profile_sync_postal_code: FieldPolicy = "always"

    # Pending link / registration flows and device codes.
    flow_ttl_seconds: int = Field(default=600, gt=0, le=600)
    flow_max_password_attempts: int = Field(default=5, gt=0)
    device_code_ttl_seconds: int = Field(default=600, gt=0, le=900)
    device_poll_interval_seconds: int = Field(default=5, gt=0)

    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs,
    # comma-separated). Empty: the peer address is the client, whatever headers say.
    trusted_proxies: CommaList = ()

    # Request header caps (security.md item 22): over either, 431 before the app runs.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    max_header_count: int = Field(default=100, ge=10)

    # Emulator tuning (only when embedded or standalone).
    emulator_enforce_interval: bool = False

    _split = field_validator(
        "lwa_allowed_client_ids", "amazon_required_fields", "trusted_proxies", mode="before"
    )(_split_commas)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # A typo must not silently trust nothing (or a host name nobody resolves).
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"LWA_ACCOUNTS_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR"
                ) from None
        return value

    _policies = field_validator("profile_sync_name", "profile_sync_postal_code", mode="before")(
        _field_policy
    )

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.env == "production":
            if self.secret_key is None:
                raise ValueError("LWA_ACCOUNTS_SECRET_KEY is required in production")
            if self.lwa_client_id is None:
                raise ValueError("LWA_ACCOUNTS_LWA_CLIENT_ID is required in production")
        return self

    # Derived values --------------------------------------------------------------

    @property
    def is_development(self) -> bool:
        return self.env in ("development", "test")

    @property
    def secure_cookies(self) -> bool:
        return (not self.is_development) if self.cookie_secure is None else self.cookie_secure

    @property
    def amazon_emulated(self) -> bool:
        """True when no real LWA client is configured: the embedded emulator stands in."""
        return self.lwa_client_id is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'lwa-accounts.db').as_posix()}"

    @property
    def web_client_id(self) -> str:
        return self.lwa_client_id or EMULATED_WEB_CLIENT_ID

    @property
    def web_client_secret(self) -> str:
        if self.lwa_client_secret is not None:
            return self.lwa_client_secret.get_secret_value()
        return EMULATED_WEB_CLIENT_SECRET if self.amazon_emulated else ""

    @property
    def device_client_id(self) -> str:
        if self.lwa_device_client_id:
            return self.lwa_device_client_id
        return EMULATED_DEVICE_CLIENT_ID if self.amazon_emulated else self.web_client_id

    @property
    def allowed_client_ids(self) -> frozenset[str]:
        """The tokeninfo ``aud`` allow-list (security.md item 2)."""
        if self.lwa_allowed_client_ids:
            return frozenset(self.lwa_allowed_client_ids)
        return frozenset({self.web_client_id, self.device_client_id})

    @property
    def amazon_api_url(self) -> str:
        if self.lwa_api_url:
            return self.lwa_api_url.rstrip("/")
        if self.amazon_emulated:
            return self.public_url.rstrip("/") + EMULATOR_MOUNT
        return API_URLS[self.lwa_region]

    @property
    def amazon_authorize_url(self) -> str:
        if self.lwa_authorize_url:
            return self.lwa_authorize_url
        if self.amazon_emulated:
            return self.public_url.rstrip("/") + EMULATOR_MOUNT + "/ap/oa"
        return AUTHORIZE_URLS[self.lwa_region]

    @cached_property
    def secret(self) -> bytes:
        """The signing key. In development it is generated once and kept in DATA_DIR."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()


def load_settings() -> Settings:
    """Read the environment once; callers pass the result down explicitly."""
    return Settings()
