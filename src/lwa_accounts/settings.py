"""Settings, read from the environment once (prefix ``LWA_ACCOUNTS_``).

Everything configurable lives here so that no other module reads ``os.environ``.
Amazon's base URLs are settings: that is how the emulator is plugged in.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lwa_accounts.core.profile_sync import FIELD_POLICIES, FieldPolicy
from lwa_accounts.mail.smtp_url import SmtpTarget, parse_smtp_url

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
# The test suites' key (``testing.offline_settings``); here so production can refuse it.
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"  # noqa: S105 - tests only

# The From outside production when MAIL_FROM is unset (production refuses to start then).
DEVELOPMENT_MAIL_FROM = "lwa-accounts@localhost"

CommaList = Annotated[tuple[str, ...], NoDecode]
_KEY_SEPARATORS = re.compile(r"[,\s]+")


def _field_policy(value: object, info: ValidationInfo) -> object:
    """One of ``never | fill_empty | always``; anything else refuses to start, naming the
    variable (pydantic's own message would name only the field)."""
    if value not in FIELD_POLICIES:
        variable = f"LWA_ACCOUNTS_{(info.field_name or '').upper()}"
        raise ValueError(f"{variable} must be one of {', '.join(FIELD_POLICIES)}, not {value!r}")
    return value


def is_mail_from(value: str) -> bool:
    """An address with a domain, optionally with a display name; no line breaks."""
    if any(c in value for c in "\r\n"):
        return False
    _name, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not (at and local and domain) or any(c.isspace() for c in address):
        return False
    return "." in domain or domain == "localhost"


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Frozen settings. Build with ``Settings()`` (environment) or keyword overrides in tests."""

    # hide_input_in_errors: a refused value (an SMTP URL with its password) is never echoed.
    model_config = SettingsConfigDict(
        env_prefix="LWA_ACCOUNTS_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "test", "production"] = Field(
        default="development",
        description="`development` and `test` migrate the database on start and may mount the "
        "emulated Amazon; `production` refuses to start unless the configuration is fit for it "
        "(`lwa-accounts check-config` lists every problem).",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Where the SQLite file and, outside production, the generated key live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. `postgresql+asyncpg://user@host/db`. Unset: SQLite in "
        "`DATA_DIR/lwa-accounts.db`; on SQLite, `?timeout=<seconds>` (default 30) is how long "
        "a write waits for the file's lock before answering 503.",
    )
    # PostgreSQL pool per process: enough kept open for the usual concurrency (16 requests
    # at once reuse connections instead of opening one each), a bounded overflow for bursts,
    # and connections replaced after an hour (instead of a ping before every checkout).
    db_pool_size: int = Field(
        default=20,
        gt=0,
        description="PostgreSQL connections each process keeps open.",
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        description="Extra PostgreSQL connections a process may open for a burst, closed after.",
    )
    db_pool_recycle_seconds: int = Field(
        default=3600,
        gt=0,
        description="A PostgreSQL connection older than this is replaced at its next checkout "
        "(instead of a ping before every checkout).",
    )
    allow_sqlite_in_production: bool = Field(
        default=False,
        description="Let production run on SQLite (one host, one process). Without it, "
        "production on SQLite refuses to start.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="The one secret key: signs CSRF tokens and the Amazon sign-in cookies and "
        "keys the sealing of secrets in the database. The same on every host; at least 32 "
        "characters in production. Unset outside production: generated once into "
        "`DATA_DIR/secret_key`. To rotate, use `LWA_ACCOUNTS_SECRET_KEYS` instead.",
    )
    secret_keys: SecretStr | None = Field(
        default=None,
        description="Several secret keys, separated by commas or spaces: the first signs and "
        "seals, every one verifies and opens (key rotation, see 'Rotate the secret key'). Set "
        "this or `LWA_ACCOUNTS_SECRET_KEY`, not both.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The URL people reach; Amazon redirects back to "
        "`<PUBLIC_URL>/auth/amazon/callback`. Unset, it follows `serve --host/--port`; https "
        "in production.",
    )
    redis_url: str | None = Field(
        default=None,
        description="e.g. `redis://host:6379/0`: shares rate-limit counters between processes "
        "and hosts. Unset: counters in each process's memory.",
    )
    redis_key_prefix: str = Field(
        default="lwa-accounts",
        description="Prefix of our Redis keys (several deployments or test runs on one Redis).",
    )
    log_level: str = Field(default="INFO", description="Log level (DEBUG, INFO, WARNING...).")

    # Sessions. Browser sessions are short-lived; device (TV) sessions live long.
    session_cookie_name: str = Field(
        default="lwa_session", description="Name of the browser session cookie."
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Force the cookies' Secure flag on or off. Unset: Secure everywhere except "
        "development and test; production refuses it off.",
    )
    browser_session_idle_seconds: int = Field(
        default=12 * 3600, gt=0, description="A browser session ends after this long unused."
    )
    browser_session_absolute_seconds: int = Field(
        default=14 * 24 * 3600, gt=0, description="A browser session ends this long after sign-in."
    )
    device_session_idle_seconds: int = Field(
        default=90 * 24 * 3600,
        gt=0,
        description="A device (TV) session ends after this long unused.",
    )
    device_session_absolute_seconds: int = Field(
        default=365 * 24 * 3600,
        gt=0,
        description="A device (TV) session ends this long after sign-in.",
    )
    recent_auth_seconds: int = Field(
        default=300,
        gt=0,
        description="How recent a sign-in must be to attach or detach Amazon without typing "
        "the password again.",
    )

    # Brute-force protection (``limits`` rate-limit strings, e.g. "5/15minutes").
    # Password attempts: tight for one account from one IP, looser for one IP against any
    # account, and for one account from every IP a free budget followed by progressive
    # delays (never a wall: the owner can always try again within the longest delay). A
    # browser or device that signed in to the account before (a known device) has a budget
    # of its own instead of the account's and the IP's (docs/security.md item 8).
    password_limit_per_account_ip: str = Field(
        default="5/15minutes",
        description="Password attempts for one account from one IP (a `limits` string).",
    )
    password_limit_per_ip: str = Field(
        default="30/15minutes",
        description="Password attempts from one IP against any account.",
    )
    password_limit_per_account: str = Field(
        default="10/day",
        description="Failed password attempts for one account from every IP (not counting "
        "known devices) that go without delay within the window (one `limits` rate); past it, "
        "each attempt waits after the previous one: `LWA_ACCOUNTS_PASSWORD_DELAY_FIRST_SECONDS`, "
        "doubling up to `LWA_ACCOUNTS_PASSWORD_DELAY_MAX_SECONDS` (docs/security.md item 8).",
    )
    password_delay_first_seconds: int = Field(
        default=60,
        ge=1,
        description="The first progressive delay, once an account's free attempts are spent; "
        "each further failure doubles it.",
    )
    password_delay_max_seconds: int = Field(
        default=900,
        ge=1,
        description="The longest progressive delay between attempts on one account: the most "
        "an attacker spreading guesses over many IPs can make the owner wait.",
    )
    password_limit_per_device: str = Field(
        default="10/15minutes;50/day",
        description="Password attempts from one known device (a browser or API client that "
        "signed in to the account before and sends its device proof), replacing the account's "
        "and the IP's budgets for it; `;` separates tiers that must all have room.",
    )
    known_device_max_age_seconds: int = Field(
        default=180 * 24 * 3600,
        gt=0,
        description="How long a known-device proof (the `__Host-lwa_device` cookie, "
        "`lwa_device` without secure cookies; the API's `device_token`) stays valid after its "
        "latest password sign-in; a password change or reset retires it at once.",
    )
    registration_limit_per_ip: str = Field(
        default="20/hour", description="Accounts created per IP (a failed sign-up costs nothing)."
    )
    user_code_limit_per_ip: str = Field(
        default="20/10minutes", description="TV user-code lookups from one IP."
    )
    user_code_limit_per_code: str = Field(
        default="10/10minutes", description="Lookups of one TV user code, from anywhere."
    )
    email_limit_per_account: str = Field(
        default="5/hour",
        description="E-mails sent on request (verification, password reset, codes) to one account.",
    )
    email_limit_per_ip: str = Field(
        default="20/hour",
        description="E-mails sent on request from one IP, to any account.",
    )
    device_start_limit_per_ip: str = Field(
        default="30/10minutes",
        description="New TV codes from one IP (each may ask Amazon for a code pair).",
    )

    # Password hashing: argon2id, OWASP parameters (m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = Field(default=19456, description="argon2id memory cost in KiB.")
    argon2_time_cost: int = Field(default=2, description="argon2id iterations.")
    argon2_parallelism: int = Field(default=1, description="argon2id lanes.")

    # Login with Amazon. With no client id configured, the embedded emulator is used.
    lwa_client_id: str | None = Field(
        default=None,
        description="Your Login with Amazon client id (web security profile). Unset: the "
        "emulated Amazon is mounted at `/_amazon` (refused in production).",
    )
    lwa_client_secret: SecretStr | None = Field(
        default=None,
        description="The web client's secret (the browser flow's code exchange); required in "
        "production.",
    )
    lwa_device_client_id: str | None = Field(
        default=None,
        description="A separate Amazon client id for devices (device security profile). Unset: "
        "the web client id.",
    )
    lwa_allowed_client_ids: CommaList = Field(
        default=(),
        description="Whose Amazon tokens are accepted (tokeninfo `aud` check). Empty: the web "
        "and device client ids.",
    )
    lwa_region: Region = Field(
        default="na", description="Which Amazon hosts to call: `na`, `eu` or `fe`."
    )
    lwa_api_url: str | None = Field(
        default=None,
        description="Override of Amazon's API base URL (tests, proxies). Unset: the region's.",
    )
    lwa_authorize_url: str | None = Field(
        default=None,
        description="Override of Amazon's authorization page URL. Unset: the region's.",
    )
    lwa_scope: str = Field(
        default="profile postal_code", description="Scopes asked of Amazon, space-separated."
    )
    lwa_connect_timeout: float = Field(
        default=3.0, gt=0, description="Seconds to connect to Amazon."
    )
    lwa_read_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for one Amazon answer."
    )
    lwa_deadline_seconds: float = Field(
        default=8.0, gt=0, description="Seconds one Amazon operation may take, retries included."
    )
    lwa_max_connections: int = Field(
        default=20, gt=0, description="Connections to Amazon kept per process."
    )

    # What happens when an unseen Amazon user signs in.
    amazon_signup: Literal["auto", "form", "closed"] = Field(
        default="auto",
        description="An unseen Amazon user: `auto` creates the account, `form` asks for a "
        "registration, `closed` refuses.",
    )
    amazon_required_fields: CommaList = Field(
        default=("email", "name"),
        description="Fields an account needs; missing ones are asked for.",
    )

    # Profile sync per field at Amazon sign-in, attach and link (security.md item 14):
    # never | fill_empty (only an empty local value) | always (follow Amazon).
    profile_sync_name: FieldPolicy = Field(
        default="fill_empty",
        description="What an Amazon sign-in, link or attach does to the account's name: "
        "`never` keeps ours, `fill_empty` fills only an empty one, `always` follows Amazon.",
    )
    profile_sync_postal_code: FieldPolicy = Field(
        default="always",
        description="The same for the postal code (Amazon not sharing one blanks nothing).",
    )

    # Pending link / registration flows and device codes.
    flow_ttl_seconds: int = Field(
        default=600,
        gt=0,
        le=600,
        description="Lifetime of a pending link or registration flow.",
    )
    flow_max_password_attempts: int = Field(
        default=5, gt=0, description="Wrong passwords a pending link flow takes before it ends."
    )
    device_code_ttl_seconds: int = Field(
        default=600, gt=0, le=900, description="Lifetime of a TV code."
    )
    device_poll_interval_seconds: int = Field(
        default=5, gt=0, description="Seconds a TV must wait between polls."
    )

    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs,
    # comma-separated). Empty: the peer address is the client, whatever headers say.
    trusted_proxies: CommaList = Field(
        default=(),
        description="IPs / CIDRs of reverse proxies whose `X-Forwarded-For` / "
        "`X-Forwarded-Proto` are believed; the client is the rightmost forwarded address that "
        "is not one of them. Empty: the peer is the client, whatever the headers say.",
    )

    # Serving (`lwa-accounts serve`; docs/operations.md "Workers, graceful shutdown and
    # reverse proxies"). workers None: one per core when the configuration can be shared by
    # several processes (web/workers.py), else 1. On SIGTERM/SIGINT requests in flight get
    # shutdown_grace_seconds to finish before they are cancelled.
    workers: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Worker processes `serve` starts; unset: one per core when the "
        "configuration can be shared by several processes (Redis, no embedded emulator, "
        "no in-memory SQLite), else 1.",
    )
    shutdown_grace_seconds: int = Field(
        default=20,
        gt=0,
        le=3600,
        description="On SIGTERM/SIGINT, how long requests in flight get to finish before "
        "they are cancelled.",
    )

    # Request header caps (security.md item 22): over either, 431 before the app runs.
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="Request headers larger than this get 431; `serve` stops reading a head "
        "over 4 times this (400 and close).",
    )
    max_header_count: int = Field(
        default=100, ge=10, description="Requests with more headers than this get 431."
    )

    # Emulator tuning (only when embedded or standalone).
    emulator_enforce_interval: bool = Field(
        default=False,
        description="The emulated Amazon answers `slow_down` to a device polling too fast.",
    )

    # Logs and metrics (docs/operations.md "Logs", "Metrics, health and readiness").
    log_format: Literal["json", "console"] | None = Field(
        default=None,
        description="Log lines as one JSON object each, or console-pretty; unset: json in "
        "production, console otherwise.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description='When set, /metrics answers only "Authorization: Bearer <token>".',
    )
    metrics_loopback_only: bool = Field(
        default=False,
        description="/metrics answers only peers on 127.0.0.0/8 or ::1.",
    )
    metrics_sessions_refresh_seconds: int = Field(
        default=30,
        ge=1,
        description="How long the active-sessions gauge's count is cached per process.",
    )

    # Outgoing mail (docs/operations.md "Outgoing mail"): the delivery worker in each serving
    # process takes committed messages from the outbox and sends them over SMTP; with no
    # SMTP_URL nothing leaves and /_dev/mail shows the outbox (development only).
    smtp_url: SecretStr | None = Field(
        default=None,
        description="Where mail leaves: `smtp://user:pass@host:587?starttls=1` (STARTTLS "
        "required), `smtps://user:pass@host:465` (TLS from the start) or `smtp://host:25` "
        "(plain, a local relay); `&cafile=PATH` trusts a private CA. A secret: never logged. "
        "Unset: nothing is sent and `/_dev/mail` shows the outbox (refused in production).",
    )
    mail_from: str | None = Field(
        default=None,
        description="The From of every message, `no-reply@example.com` or "
        "`Accounts <no-reply@example.com>`; required in production (elsewhere "
        "`lwa-accounts@localhost`).",
    )
    mail_max_attempts: int = Field(
        default=8,
        ge=1,
        le=50,
        description="Delivery attempts per message before it is marked failed (a permanent "
        "5xx refusal of the recipient or message fails at once).",
    )
    mail_retry_base_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Wait after the first failed attempt; doubled after each further one "
        "(with random jitter of up to half), up to `MAIL_RETRY_MAX_SECONDS`.",
    )
    mail_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="The longest wait between two delivery attempts."
    )
    mail_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How often the delivery worker looks for due mail (a commit in the same "
        "process that queued mail wakes it at once).",
    )
    mail_smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Seconds one SMTP connect or command may take."
    )
    mail_sent_retention_days: int = Field(
        default=7,
        ge=0,
        le=3650,
        description="`db prune` deletes sent messages (their bodies already emptied) this "
        "many days after sending.",
    )
    mail_failed_retention_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="`db prune` deletes messages that failed for good this many days after "
        "they failed.",
    )

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

    @field_validator("password_limit_per_account")
    @classmethod
    def _one_free_budget(cls, value: str) -> str:
        # Tiers were the old wall; progressive delays replaced them (security.md item 8).
        if ";" in value or "," in value:
            raise ValueError(
                "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT takes one rate (e.g. 10/day): "
                "the delays after it are PASSWORD_DELAY_FIRST_SECONDS and _MAX_SECONDS"
            )
        return value

    @model_validator(mode="after")
    def _delays_grow(self) -> Settings:
        if self.password_delay_max_seconds < self.password_delay_first_seconds:
            raise ValueError(
                "LWA_ACCOUNTS_PASSWORD_DELAY_MAX_SECONDS must be at least "
                "PASSWORD_DELAY_FIRST_SECONDS"
            )
        return self

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_smtp_url(value.get_secret_value())  # raises naming what is wrong
            return value
        return None  # an empty variable is unset

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_an_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not is_mail_from(value):
            raise ValueError(
                "LWA_ACCOUNTS_MAIL_FROM must be an address, `a@example.com` or "
                "`Name <a@example.com>`"
            )
        return value.strip()

    @model_validator(mode="after")
    def _one_way_to_give_keys(self) -> Settings:
        # Which would win would be a guess; a rotation half done must be visible.
        if self.secret_key is not None and self.secret_keys is not None:
            raise ValueError(
                "Set LWA_ACCOUNTS_SECRET_KEYS or LWA_ACCOUNTS_SECRET_KEY, not both "
                "(SECRET_KEYS lists every key, the signing key first)"
            )
        if self.secret_keys is not None and not self.configured_secret_keys:
            raise ValueError("LWA_ACCOUNTS_SECRET_KEYS holds no key")
        return self

    # Derived values --------------------------------------------------------------

    @property
    def is_development(self) -> bool:
        return self.env in ("development", "test")

    @property
    def effective_log_format(self) -> Literal["json", "console"]:
        """JSON lines in production unless told otherwise; readable lines elsewhere."""
        if self.log_format is not None:
            return self.log_format
        return "json" if self.env == "production" else "console"

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
    def smtp(self) -> SmtpTarget | None:
        """Where mail leaves (``SMTP_URL`` parsed), or None: nothing is sent."""
        if self.smtp_url is None:
            return None
        return parse_smtp_url(self.smtp_url.get_secret_value())

    @property
    def effective_mail_from(self) -> str:
        return self.mail_from or DEVELOPMENT_MAIL_FROM

    @property
    def configured_secret_keys(self) -> tuple[str, ...]:
        """The keys the environment gives (SECRET_KEYS split on commas and spaces, or the one
        SECRET_KEY), the signing key first; () when none. Reads no file."""
        if self.secret_keys is not None:
            keys = _KEY_SEPARATORS.split(self.secret_keys.get_secret_value())
            return tuple(key for key in keys if key)
        if self.secret_key is not None:
            return (self.secret_key.get_secret_value(),)
        return ()

    @cached_property
    def signing_keys(self) -> tuple[bytes, ...]:
        """Every secret key, the one that signs and seals first; all of them verify and open.

        Outside production, with none configured, one is generated once and kept in
        DATA_DIR. In production a missing key is a refusal (config_check.py) long before
        anything asks for one here.
        """
        configured = self.configured_secret_keys
        if configured:
            return tuple(key.encode() for key in configured)
        if not self.is_development:
            raise ValueError("LWA_ACCOUNTS_SECRET_KEY is required in production")
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return (path.read_text().strip().encode(),)


def load_settings() -> Settings:
    """Read the environment once; callers pass the result down explicitly."""
    return Settings()
