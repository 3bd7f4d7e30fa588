"""The narrow interfaces between layers (typing Protocols).

The Amazon integration talks to the account system only through these, so a company with
its own user database can plug in an adapter (the integration kit). Stores are bound to one
database transaction, which the edge (request handler, CLI command) opens and commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, TypeVar

from lwa_accounts.core.device_grant import (
    AmazonAuthorization,
    AmazonAuthorizationStatus,
    DeviceGrant,
    DeviceGrantRecord,
)
from lwa_accounts.core.email_codes import EmailCode, EmailCodePurpose
from lwa_accounts.core.models import (
    Account,
    AmazonLink,
    AmazonProfile,
    AuditEvent,
    AuditRecord,
    CodePair,
    NewAccount,
    OAuthErrorReply,
    OutgoingMail,
    PendingFlow,
    PendingFlowStatus,
    Session,
    SessionKind,
    TokenSet,
)

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """False on mismatch; never raises for a wrong password."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class AccountStore(Protocol):
    async def get(self, account_id: str) -> Account | None: ...

    async def get_by_username(self, username: str) -> Account | None:
        """Case-insensitive."""
        ...

    async def get_by_email(self, email: str) -> Account | None:
        """By normalised email."""
        ...

    async def get_by_login(self, login: str) -> Account | None:
        """A username or an email address, as typed on a sign-in form."""
        ...

    async def lock(self, account_id: str) -> Account | None:
        """Read the account under a row lock (SELECT ... FOR UPDATE) for the transaction."""
        ...

    async def create(self, new: NewAccount) -> Account:
        """Raises UsernameTaken / EmailTaken on a unique-constraint conflict."""
        ...

    async def update(
        self,
        account_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        email_verified: bool | None = None,
        password_hash: str | None = None,
        postal_code: str | None = None,
    ) -> Account:
        """Change only the given fields (``""`` removes an email or postal code). Raises
        EmailTaken on conflict."""
        ...

    async def set_disabled(self, account_id: str, disabled: bool) -> Account:
        """Disable (no sign-in, no live session) or enable an account. Raises NotFound for
        an unknown account, NotSupported where the accounts table has no such flag."""
        ...

    async def list(self, limit: int = 100, offset: int = 0) -> Sequence[Account]:
        """Accounts, oldest first (for the CLI)."""
        ...


class SessionStore(Protocol):
    async def create(
        self,
        account_id: str,
        kind: SessionKind,
        *,
        device_name: str | None,
        user_agent: str | None,
        ip: str | None,
    ) -> tuple[str, Session]:
        """A fresh random token (returned once, stored hashed) and its session."""
        ...

    async def resolve(self, token: str, *, touch: bool = True) -> tuple[Session, Account] | None:
        """The live session and its account for a token, touching ``last_seen_at`` when
        due (``Session.touch_due``); ``touch=False`` never writes."""
        ...

    async def touch(self, session: Session) -> bool:
        """Slide a live session's idle expiry (False: no longer live; never revives)."""
        ...

    async def get(self, session_id: str) -> Session | None:
        """A session by its public id, live or not."""
        ...

    async def list_for_account(self, account_id: str) -> Sequence[Session]: ...

    async def revoke(self, account_id: str, session_id: str) -> bool: ...

    async def revoke_all(self, account_id: str, *, except_session_id: str | None = None) -> int: ...

    async def mark_authenticated(self, session_id: str) -> bool:
        """Re-authentication: set ``authenticated_at`` to now. False if no such session."""
        ...

    async def purge_expired(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` sessions expired or revoked before ``before``."""
        ...


class EmailCodeStore(Protocol):
    """One-time e-mail proofs (``core/email_codes.py``); secrets only as digests."""

    async def create(self, code: EmailCode) -> None: ...

    async def get_for_update(self, code_id: str) -> EmailCode | None: ...

    async def live(
        self,
        account_id: str,
        purpose: EmailCodePurpose,
        *,
        now: datetime,
        bound_to: str | None = None,
    ) -> EmailCode | None:
        """The newest usable proof of ``purpose`` for the account (and ``bound_to``)."""
        ...

    async def mark_used(self, code_id: str, *, now: datetime) -> bool:
        """Spend it; False when already spent (a concurrent redemption lost)."""
        ...

    async def count_wrong(self, code_id: str) -> int:
        """One more wrong code typed; the attempts so far."""
        ...

    async def void(
        self, account_id: str, purposes: Sequence[EmailCodePurpose], *, now: datetime
    ) -> int:
        """Spend every unused proof of ``purposes`` for the account; how many."""
        ...


class Outbox(Protocol):
    """E-mail waiting to be sent (the transactional outbox): a message queued in a
    transaction that rolls back is never sent; one queued in a committed one always is."""

    async def enqueue(self, mail: OutgoingMail, *, now: datetime) -> int:
        """Queue ``mail`` (due now); returns its outbox id."""
        ...

    async def purge_settled(
        self, *, sent_before: datetime, failed_before: datetime, limit: int
    ) -> int:
        """Delete at most ``limit`` messages sent before ``sent_before`` or failed for good
        before ``failed_before`` (housekeeping); mail still to send is never deleted."""
        ...


class AuditLog(Protocol):
    async def record(self, event: AuditEvent) -> None: ...

    async def record_many(self, events: Sequence[AuditEvent]) -> None:
        """Several events, in order, in one statement (a transaction's buffered events)."""
        ...

    async def list(
        self, *, account_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> Sequence[AuditEvent]: ...

    async def page(
        self,
        *,
        after: tuple[datetime, int] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        account_id: str | None = None,
        limit: int = 500,
    ) -> Sequence[AuditRecord]:
        """One page of an export, oldest first: events at or after ``since`` and before
        ``until``, strictly after the ``position`` ``after`` (keyset paging on the indexed
        time, so each page costs the same however deep the export is)."""
        ...


class IdentityStore(Protocol):
    """Amazon ``user_id`` <-> local account. One identity per account, one account per identity."""

    async def get_by_amazon_user_id(self, amazon_user_id: str) -> AmazonLink | None: ...

    async def get_for_account(self, account_id: str) -> AmazonLink | None: ...

    async def get_linked(self, amazon_user_id: str) -> tuple[AmazonLink, Account] | None:
        """The identity's link and its account in one read (a returning sign-in)."""
        ...

    async def link(self, link: AmazonLink) -> AmazonLink:
        """Raises AmazonLinkedElsewhere / AlreadyLinked on a unique-constraint conflict."""
        ...

    async def update_seen(self, link: AmazonLink) -> AmazonLink: ...

    async def unlink(self, account_id: str) -> bool: ...

    def atomic(self) -> AbstractAsyncContextManager[None]:
        """A savepoint: create-and-link succeed together or roll back together, leaving
        the surrounding transaction usable after a unique-constraint conflict."""
        ...


class AmazonClient(Protocol):
    """What the flows need from Login with Amazon (implemented in ``lwa/``)."""

    def authorize_url(
        self, *, state: str, code_challenge: str, redirect_uri: str, scope: str | None = None
    ) -> str:
        """Amazon's ``/ap/oa`` URL for the web flow, PKCE S256."""
        ...

    async def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Authorization code -> tokens (web client id + secret). Never retried."""
        ...

    async def verify_and_fetch(self, access_token: str) -> AmazonProfile:
        """tokeninfo (``aud`` in the allow-list) + profile, ``user_id`` matched.

        Raises InvalidToken, TokenForAnotherApp, InsufficientScope or AmazonUnavailable.
        """
        ...


class PasswordAttempt(Protocol):
    """One password attempt, already taken from its budgets before the password is verified."""

    @property
    def left(self) -> int:
        """Attempts left after this one before 429."""
        ...

    def failed(self) -> int:
        """A wrong password: the attempt counts; returns the attempts left."""
        ...

    async def succeeded(self) -> None:
        """The right password: the attempt is given back and the account's budget starts
        again (the IP's does not)."""
        ...


class Throttle(Protocol):
    """Password-attempt throttling (implemented in ``throttle/``: a sliding log in memory
    or Redis).

    ``account_key`` names the account under attack (its id, or the login as typed when no
    such account exists) so unknown and known logins are throttled alike. An attempt is
    reserved atomically from every budget it belongs to (account and IP) *before* the
    password is verified, so parallel attempts never get more than the budget through.
    ``device`` is a known device's nonce (its signed proof checked for this account by
    ``flows/known_devices.py``): its attempts use that device's own budget instead.
    """

    async def reserve_password(
        self, account_key: str, ip: str | None, *, device: str | None = None
    ) -> PasswordAttempt:
        """Take one attempt from the account's and the IP's budget (or the known
        device's), or from none and raise TooManyAttempts (with retry_after)."""
        ...

    async def peek_password(
        self, account_key: str, ip: str | None, *, device: str | None = None
    ) -> None:
        """Raise TooManyAttempts if a budget is spent; reserves nothing (early refusal only)."""
        ...

    async def forgive_account(self, account_key: str, ip: str | None = None) -> None:
        """Empty the account's budget from every IP, and from ``ip`` (a password reset
        proved the owner); per-IP and per-device budgets stay."""
        ...

    def reserving_registration(self, ip: str | None) -> AbstractAsyncContextManager[object]:
        """One registration from the IP's budget (TooManyAttempts when spent) for the
        block: kept when it ends normally, given back when it raises."""
        ...

    async def count_user_code(self, code: str | None, ip: str | None) -> None:
        """A user-code lookup, per IP and per code, counted whatever it finds."""
        ...

    async def count_device_start(self, ip: str | None) -> None:
        """An anonymous device sign-in start, per IP, counted whatever happens."""
        ...

    async def count_email(self, account_key: str, ip: str | None) -> None:
        """One e-mail sent on someone's request (a verification, a reset, a code), per
        recipient account and per IP, counted before it is queued (TooManyAttempts)."""
        ...

    async def reserve_email_code(self, code_id: str) -> PasswordAttempt:
        """One guess at an e-mailed code, taken from that code's budget before it is
        compared (a wrong one keeps it, the right one gives it back), or
        TooManyAttempts: parallel guesses never get more than the budget compared."""
        ...

    async def aclose(self) -> None:
        """Close its connections (Redis); the composition root calls it at shutdown."""
        ...


class AmazonDeviceClient(AmazonClient, Protocol):
    """The code-based-linking (TV) parts of the Amazon client, with the device client id."""

    async def create_code_pair(self, *, scope: str | None = None) -> CodePair:
        """``/auth/o2/create/codepair``. Raises AmazonProtocolError or AmazonUnavailable."""
        ...

    async def poll_device_token(
        self, *, device_code: str, user_code: str
    ) -> TokenSet | OAuthErrorReply:
        """One poll; OAuth errors (``authorization_pending``...) are returned, not raised.

        Raises AmazonUnavailable on timeouts, dropped connections, 5xx and malformed bodies.
        """
        ...

    async def refresh(self, refresh_token: str, *, device: bool = False) -> TokenSet:
        """Raises AmazonSignedOut (an InvalidToken) when the grant was revoked
        (``invalid_grant``)."""
        ...


class PendingFlowStore(Protocol):
    """Pending Amazon link / registration steps, keyed by the SHA-256 of their id."""

    async def create(self, flow: PendingFlow) -> PendingFlow: ...

    async def get(self, id_hash: str, *, for_update: bool = False) -> PendingFlow | None: ...

    async def use_attempt(self, id_hash: str) -> int:
        """Count one wrong password; the attempts left (never below zero)."""
        ...

    async def transition(
        self,
        id_hash: str,
        *,
        from_status: PendingFlowStatus,
        to_status: PendingFlowStatus,
        completed_account_id: str | None = None,
    ) -> bool:
        """Compare-and-set the status (single use); False if it was not ``from_status``."""
        ...

    async def become_registration(self, id_hash: str, *, missing: tuple[str, ...]) -> bool:
        """Compare-and-set a pending link flow into a registration flow without the Amazon
        email (the account holding it is left alone); False if it was no pending link."""
        ...

    async def delete_expired(self, now: datetime) -> int: ...

    async def purge_expired(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` flows (pending or finished) that expired before ``before``."""
        ...


class DeviceStore(Protocol):
    """Device grants, phone hand-offs and server-assisted Amazon code pairs (issue 6).

    Codes are looked up by digest; every state change is a compare-and-set that returns
    False when the row changed since it was read (a racing poll lost).
    """

    async def create_grant(
        self, record: DeviceGrantRecord, *, user_code_hash: str, device_code_hash: str | None
    ) -> bool:
        """False when the user code (or device code) is already taken."""
        ...

    async def grant_by_device_code(self, device_code_hash: str) -> DeviceGrantRecord | None: ...

    async def grant_by_user_code(self, user_code_hash: str) -> DeviceGrantRecord | None: ...

    async def grant_by_id(self, grant_id: str) -> DeviceGrantRecord | None: ...

    async def save_grant(
        self, grant_id: str, *, before: DeviceGrant, after: DeviceGrant
    ) -> bool: ...

    async def delete_handoffs_for_flow(self, flow_id_hash: str) -> int: ...

    async def create_authorization(self, auth: AmazonAuthorization) -> None: ...

    async def get_authorization(self, id_hash: str) -> AmazonAuthorization | None: ...

    async def record_device_poll(
        self, auth: AmazonAuthorization, *, now: datetime, interval: int
    ) -> bool: ...

    async def claim_amazon_poll(self, auth: AmazonAuthorization, *, now: datetime) -> bool: ...

    async def set_amazon_interval(self, id_hash: str, amazon_interval: int) -> None: ...

    async def finish_authorization(
        self, id_hash: str, status: AmazonAuthorizationStatus
    ) -> bool: ...

    async def delete_expired(self, before: datetime) -> int: ...

    async def purge_expired(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` grants and code pairs that expired before ``before``."""
        ...


class Stores(Protocol):
    """The stores of one transaction (the SQL store's ``SqlStores``, or the kit's)."""

    @property
    def accounts(self) -> AccountStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def identities(self) -> IdentityStore: ...

    @property
    def pending_flows(self) -> PendingFlowStore: ...

    @property
    def devices(self) -> DeviceStore: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def email_codes(self) -> EmailCodeStore: ...


class Transactions(Protocol):
    """Opens units of work (``store.db.Database`` and the kit's ``KitDatabase``)."""

    def read(self) -> AbstractAsyncContextManager[Stores]:
        """A read-only unit of work: no SQLite write lock, read-only on PostgreSQL."""
        ...

    async def run_read(self, work: Callable[[Stores], Awaitable[T]]) -> T:
        """``work`` in ``read()``, retried once from its start on a dead connection."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Stores]:
        """Commits when the block ends, rolls back when it raises; raises
        ``DatabaseUnavailable`` when the database is down or busy past its timeout."""
        ...
