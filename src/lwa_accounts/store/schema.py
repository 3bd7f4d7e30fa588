"""The database schema (SQLAlchemy Core tables). Alembic migrations must match it exactly.

Timestamps are stored in UTC and always read back timezone-aware, on SQLite too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

# Stable constraint names: the stores tell conflicts apart by them, and migrations need them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID_LENGTH = 32
USER_AGENT_MAX = 512
IP_MAX = 64
DEVICE_NAME_MAX = 100


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored as UTC. Rejects naive datetimes instead of guessing."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store the UTC wall time (text sorts chronologically).
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


accounts = Table(
    "accounts",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("username", String(32), nullable=False),  # normalised lower-case
    Column("email", String(254), nullable=True),  # as given
    Column("email_normalized", String(254), nullable=True),
    Column("name", String(100), nullable=False),
    Column("postal_code", String(32), nullable=True),  # migration 0005_mail
    Column("password_hash", String(255), nullable=True),
    Column("email_verified", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("username"),
    UniqueConstraint("email_normalized"),  # NULLs never collide: email is optional
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("token_hash", String(64), nullable=False),  # SHA-256 hex of the bearer/cookie token
    Column(
        "account_id",
        String(ID_LENGTH),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("device_name", String(DEVICE_NAME_MAX), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("authenticated_at", UTCDateTime, nullable=False),
    Column("idle_expires_at", UTCDateTime, nullable=False),
    Column("absolute_expires_at", UTCDateTime, nullable=False),
    Column("user_agent", String(USER_AGENT_MAX), nullable=True),
    Column("ip", String(IP_MAX), nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    CheckConstraint("kind IN ('browser', 'device')", name="kind"),
    Index(None, "token_hash", unique=True),
    Index(None, "account_id"),
    # Housekeeping (migration 0004_housekeeping): find expired and revoked sessions.
    Index(None, "idle_expires_at"),
    Index(None, "revoked_at"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # No foreign key: the audit trail outlives what it talks about.
    Column("account_id", String(ID_LENGTH), nullable=True),
    Column("amazon_user_id", String(128), nullable=True),
    Column("client_id", String(128), nullable=True),
    Column("ip", String(IP_MAX), nullable=True),
    Column("detail", Text, nullable=True),
    Index(None, "at"),
    Index(None, "account_id"),
)

# ---- Sign in with Amazon (issue 5, migration 0002_amazon) -----------------------------------

amazon_identities = Table(
    "amazon_identities",
    metadata,
    # The key of a link is the Amazon user_id (never the email): one account per identity...
    Column("amazon_user_id", String(128), primary_key=True),
    # ... and one identity per account.
    Column(
        "account_id",
        String(ID_LENGTH),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("client_id", String(128), nullable=False),
    Column("name", String(255), nullable=True),
    Column("email", String(254), nullable=True),
    Column("postal_code", String(32), nullable=True),
    Column("pending_email", String(254), nullable=True),
    Column("linked_at", UTCDateTime, nullable=False),
    Column("last_sign_in_at", UTCDateTime, nullable=True),
    UniqueConstraint("account_id"),
)

pending_flows = Table(
    "pending_flows",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 hex of the flow id
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    # The verified Amazon profile: the client never gets to choose the user_id.
    Column("amazon_user_id", String(128), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("name", String(255), nullable=True),
    Column("email", String(254), nullable=True),
    Column("postal_code", String(32), nullable=True),
    Column(
        "target_account_id",
        String(ID_LENGTH),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column(
        "completed_account_id",
        String(ID_LENGTH),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("attempts_left", Integer, nullable=False),
    Column("can_register_instead", Boolean, nullable=False),
    Column("missing", String(128), nullable=False),  # comma-separated field names
    Column("session_kind", String(16), nullable=False),
    Column("device_name", String(DEVICE_NAME_MAX), nullable=True),
    Column("binding_hash", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('link', 'registration')", name="kind"),
    CheckConstraint("status IN ('pending', 'completed', 'spent')", name="status"),
    CheckConstraint("session_kind IN ('browser', 'device')", name="session_kind"),
    Index(None, "expires_at"),
)

# ---- Devices and TVs (issue 6, migration 0003_devices) ---------------------------------------

device_grants = Table(
    "device_grants",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("purpose", String(16), nullable=False),  # 'device' (RFC 8628) or 'handoff'
    # Both codes are secrets: only their SHA-256 is stored (security.md items 15, 16).
    Column("device_code_hash", String(64), nullable=True),  # 'device' grants only
    Column("user_code_hash", String(64), nullable=False),
    Column(
        "flow_id_hash",  # 'handoff' grants: the pending Amazon flow to finish on a phone
        String(64),
        ForeignKey("pending_flows.id_hash", ondelete="CASCADE"),
        nullable=True,
    ),
    # 'handoff' grants: the flow id itself, sealed with a key derived from the secret key
    # and the user code, so the database alone never yields a usable flow id.
    Column("sealed_flow_id", String(256), nullable=True),
    Column("status", String(16), nullable=False),
    Column("device_name", String(DEVICE_NAME_MAX), nullable=True),
    Column("interval", Integer, nullable=False),
    Column(
        "account_id",
        String(ID_LENGTH),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("ip", String(IP_MAX), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_poll_at", UTCDateTime, nullable=True),
    CheckConstraint("purpose IN ('device', 'handoff')", name="purpose"),
    CheckConstraint("status IN ('pending', 'approved', 'denied', 'consumed')", name="status"),
    Index(None, "device_code_hash", unique=True),
    Index(None, "user_code_hash", unique=True),
    Index(None, "expires_at"),
)

amazon_device_authorizations = Table(
    "amazon_device_authorizations",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 of the id the device holds
    Column("status", String(16), nullable=False),
    Column("user_code", String(64), nullable=False),  # Amazon's; shown on the TV anyway
    # Amazon's device code: never sent to the device; cleared once the pair is finished.
    Column("device_code", String(512), nullable=True),
    Column("verification_uri", String(512), nullable=False),
    Column("device_name", String(DEVICE_NAME_MAX), nullable=True),
    Column("interval", Integer, nullable=False),
    Column("amazon_interval", Integer, nullable=False),
    Column("ip", String(IP_MAX), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_poll_at", UTCDateTime, nullable=True),
    Column("amazon_polled_at", UTCDateTime, nullable=True),
    CheckConstraint("status IN ('pending', 'done', 'expired', 'denied')", name="status"),
    Index(None, "expires_at"),
)


# ---- E-mail: the outbox and one-time e-mail codes (issue 13, migration 0005_mail) -------------

# Every message is written here in the transaction that decided to send it, so a rollback
# sends nothing and a commit always sends (the delivery worker takes due rows by lease).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),  # the template: verify_email, ...
    Column("account_id", String(ID_LENGTH), nullable=True),  # no FK: mail outlives accounts
    Column("to_address", String(254), nullable=False),
    Column("subject", String(255), nullable=False),
    # The message (text and HTML) sealed at rest: it may carry a one-time link. Emptied
    # once sent; kept in development, where /_dev/mail shows it.
    Column("sealed_body", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("claimed_until", UTCDateTime, nullable=True),  # a worker's lease on the row
    Column("sent_at", UTCDateTime, nullable=True),
    Column("failed_at", UTCDateTime, nullable=True),  # gave up after the last attempt
    Column("last_error", String(500), nullable=True),
    Index(None, "next_attempt_at"),
    Index(None, "account_id"),
)

# A one-time proof sent by e-mail: a link (signed id + secret) and a short code, for one
# purpose (verify_email, reset_password, prove_account, ...), single-use, expiring.
email_codes = Table(
    "email_codes",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column(
        "account_id",
        String(ID_LENGTH),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("email", String(254), nullable=False),  # the address it was sent to
    Column("link_digest", String(64), nullable=False),  # SHA-256 hex of the link's secret
    Column("code_digest", String(64), nullable=False),  # keyed digest of the short code
    Column("bound_to", String(128), nullable=True),  # e.g. a pending flow it proves for
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),  # wrong codes typed against it
    Index(None, "account_id"),
    Index(None, "expires_at"),
    UniqueConstraint("link_digest"),
)
