"""Domain values shared by every layer. Frozen dataclasses; no behaviour beyond invariants."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

SessionKind = Literal["browser", "device"]
# Sliding a session's idle expiry costs a write; once a minute per session keeps session
# checks read-only (no SQLite write lock) in between.
SESSION_TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Account:
    """A local account. ``password_hash`` is None for accounts created through Amazon."""

    id: str
    username: str
    email: str | None
    name: str
    email_verified: bool
    disabled: bool
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = field(default=None, repr=False)
    # Typed by the person or synced from Amazon (core/profile_sync.py); None: none known.
    postal_code: str | None = None

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None


@dataclass(frozen=True, slots=True)
class NewAccount:
    """What a registration supplies; the store assigns id and timestamps."""

    username: str
    email: str | None
    name: str
    password_hash: str | None
    email_verified: bool = False
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session. The bearer/cookie token itself is never stored, only its SHA-256."""

    id: str
    account_id: str
    kind: SessionKind
    device_name: str | None
    created_at: datetime
    last_seen_at: datetime
    authenticated_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    user_agent: str | None
    ip: str | None
    revoked_at: datetime | None = None

    @property
    def expires_at(self) -> datetime:
        return min(self.idle_expires_at, self.absolute_expires_at)

    def touch_due(self, now: datetime) -> bool:
        """Whether a use now should slide the idle expiry (a write): at most once per
        ``SESSION_TOUCH_INTERVAL``. Between writes the stored expiry is the one set at the
        last write, so idle expiry is never late, at most that interval early."""
        return now - self.last_seen_at >= SESSION_TOUCH_INTERVAL


@dataclass(frozen=True, slots=True)
class AmazonProfile:
    """A verified Amazon identity: tokeninfo ``aud`` checked and ``user_id`` matched."""

    user_id: str
    client_id: str
    name: str | None = None
    email: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class AmazonLink:
    """The mapping Amazon ``user_id`` -> local account, with the profile last seen."""

    amazon_user_id: str
    account_id: str
    client_id: str
    name: str | None
    email: str | None
    postal_code: str | None
    linked_at: datetime
    last_sign_in_at: datetime | None
    # A changed Amazon email not (yet) applied to the account (security.md item 14).
    pending_email: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the audit log. Never holds a token or a password."""

    kind: str
    at: datetime
    account_id: str | None = None
    amazon_user_id: str | None = None
    client_id: str | None = None
    ip: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored audit event and its sequence number: ``position`` orders an export and
    is where its next page starts (time, then insertion order)."""

    seq: int
    event: AuditEvent

    @property
    def position(self) -> tuple[datetime, int]:
        return (self.event.at, self.seq)


@dataclass(frozen=True, slots=True)
class TokenSet:
    """Tokens from Amazon's token endpoint. Never logged, never stored in clear."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class CodePair:
    """Amazon's code-based-linking pair (``/auth/o2/create/codepair``)."""

    user_code: str
    device_code: str = field(repr=False)
    verification_uri: str
    expires_in: int
    interval: int


PendingFlowKind = Literal["link", "registration"]
PendingFlowStatus = Literal["pending", "completed", "spent"]


@dataclass(frozen=True, slots=True)
class PendingFlow:
    """A server-side step between an Amazon sign-in and a session: prove the local password
    (``link``) or fill in a registration (``registration``).

    The id is handed out once and stored hashed. ``status`` goes pending -> spent when the
    caller finishes it, or pending -> completed -> spent when it is finished elsewhere and
    the originating device collects its session.
    """

    id_hash: str
    kind: PendingFlowKind
    status: PendingFlowStatus
    profile: AmazonProfile
    target_account_id: str | None  # the account to prove the password of (link)
    completed_account_id: str | None  # the account the originator will be signed in to
    attempts_left: int
    can_register_instead: bool
    missing: tuple[str, ...]  # required registration fields Amazon did not supply
    session_kind: SessionKind
    device_name: str | None
    binding_hash: str | None  # SHA-256 of the originating browser's binding secret
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OAuthErrorReply:
    """An OAuth error answer from Amazon (``{"error_description", "error"}``) and its status.

    A value, not an exception: a device-token poll answers ``authorization_pending`` many
    times before it succeeds, and the poller decides what each code means.
    """

    status: int
    error: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """One e-mail to send, rendered (``mail/render.py``) and queued in the outbox in the
    transaction that decided to send it (``Tx.send_mail``)."""

    kind: str  # the template's name: verify_email, password_reset, ...
    to: str
    subject: str
    text: str = field(repr=False)
    html: str = field(repr=False)
    account_id: str | None = None
