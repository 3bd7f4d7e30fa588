"""Account use cases shared by the pages and the JSON API: register, password sign-in,
sign-out, change password, re-authenticate, list and revoke sessions.

Flows never commit and never import a web framework. Outcomes that must leave an audit
trail even though they fail (a wrong password, a throttled attempt) are returned as
``Refused(error)`` instead of raised, so the edge can commit the audit event first and
then raise ``outcome.error`` (see ``unwrap``). Plain bad input is raised at once.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from lwa_accounts.core.models import Account, AuditEvent, NewAccount, Session, SessionKind
from lwa_accounts.core.validation import (
    EMAIL_MAX,
    PASSWORD_MAX,
    Invalid,
    email_key,
    validate_password,
    validate_registration,
)
from lwa_accounts.errors import (
    AccountDisabled,
    InvalidCredentials,
    LwaAccountsError,
    NotAuthenticated,
    NotFound,
    ReauthenticationRequired,
    TooManyAttempts,
    ValidationFailed,
)
from lwa_accounts.flows.sessions import ClientInfo, SignedIn, end_session, start_session
from lwa_accounts.interfaces import Clock, PasswordHasher
from lwa_accounts.passwords import verify_against_dummy
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Stores
from lwa_accounts.throttle import Throttle

# Audit event kinds (stable strings).
ACCOUNT_REGISTERED = "account.registered"
SIGN_IN_FAILED = "signin.failed"
SIGN_IN_THROTTLED = "signin.throttled"
PASSWORD_CHANGED = "password.changed"  # noqa: S105 - an event name
REAUTHENTICATED = "session.reauthenticated"
SESSION_REVOKED = "session.revoked"


T = TypeVar("T")


@dataclass(frozen=True)
class AccountDeps:
    """What the account flows need besides the transaction's stores."""

    settings: Settings
    hasher: PasswordHasher
    throttle: Throttle
    clock: Clock
    common_passwords: Collection[str]


@dataclass(frozen=True, slots=True)
class Refused:
    """A failed attempt whose audit event must be committed before ``error`` is raised."""

    error: LwaAccountsError


def unwrap(outcome: T | Refused) -> T:
    """At the edge, after the transaction committed: raise a refusal, pass a result."""
    if isinstance(outcome, Refused):
        raise outcome.error
    return outcome


# ---- registration ------------------------------------------------------------------------


async def register(
    stores: Stores,
    deps: AccountDeps,
    *,
    username: str,
    email: str | None,
    name: str,
    password: str,
    client: ClientInfo,
) -> Account:
    """Create a password account. Raises ValidationFailed, UsernameTaken, EmailTaken or
    TooManyAttempts (registrations per IP).

    Request handlers enter ``prepare_registration`` before opening the transaction (argon2
    holds no lock then) and call ``create_prepared`` inside it, so a failure anywhere up to
    the commit gives the registration's reservation back; this runs both in the caller's
    transaction.
    """
    async with prepare_registration(
        deps, username=username, email=email, name=name, password=password, client=client
    ) as prepared:
        return await create_prepared(stores, deps, prepared, client)


@dataclass(frozen=True)
class PreparedAccount:
    """A checked registration with its password already hashed."""

    new: NewAccount


@asynccontextmanager
async def prepare_registration(
    deps: AccountDeps,
    *,
    username: str,
    email: str | None,
    name: str,
    password: str,
    client: ClientInfo,
) -> AsyncIterator[PreparedAccount]:
    """Validate every field (ValidationFailed), reserve one registration from the per-IP
    budget (TooManyAttempts) and hash the password; no database. Create the account (and
    commit) inside the block: the reservation is kept when the block ends normally and
    given back when it raises (taken, database down, ...), so the limit counts accounts
    actually created and parallel sign-ups can never exceed it."""
    checked = validate_registration(
        username=username,
        email=email,
        name=name,
        password=password,
        common=deps.common_passwords,
    )
    if not checked.ok:
        raise ValidationFailed(errors=checked.errors)
    buckets = deps.throttle.registration_buckets(client.ip)
    async with deps.throttle.reserving(buckets, on_error="give_back"):
        new = NewAccount(
            username=checked.username,
            email=checked.email,
            name=checked.name,
            password_hash=await deps.hasher.hash(checked.password),
        )
        yield PreparedAccount(new=new)


async def create_prepared(
    stores: Stores, deps: AccountDeps, prepared: PreparedAccount, client: ClientInfo
) -> Account:
    """Store the account (UsernameTaken / EmailTaken on conflict) and audit it."""
    account = await stores.accounts.create(prepared.new)
    await _audit(stores, deps, ACCOUNT_REGISTERED, account.id, client, "method=password")
    return account


# ---- password sign-in ----------------------------------------------------------------------


async def sign_in_with_password(
    stores: Stores,
    deps: AccountDeps,
    *,
    login: str,
    password: str,
    kind: SessionKind,
    device_name: str | None,
    client: ClientInfo,
) -> SignedIn | Refused:
    """Username or email + password -> a new session, all in the caller's transaction.

    Throttled per account and per IP (the attempt is reserved before verifying); an
    unknown login verifies against a dummy hash so it takes as long as a wrong password;
    the hash is upgraded when the parameters changed. Every failure gets the same
    ``invalid_credentials`` answer.

    Request handlers use the three steps separately instead (``find_login`` in one short
    transaction, ``check_password`` outside any, ``finish_password_sign_in`` in a second
    one) so no connection or SQLite write lock is held during the ~20 ms of argon2.
    """
    account = await find_login(stores, login)
    check = await check_password(
        deps,
        account=account,
        account_key=login_key(account, login),
        password=password,
        client=client,
    )
    return await finish_password_sign_in(
        stores, deps, check, kind=kind, device_name=device_name, client=client
    )


def login_key(account: Account | None, login: str) -> str:
    """The throttle key: the account id, or the login as typed when no account matches, so
    a budget belongs to the account however it is spelled and unknown logins are throttled
    alike."""
    return account.id if account else "login:" + email_key(login)[:EMAIL_MAX]


async def find_login(stores: Stores, login: str) -> Account | None:
    """The account for a username or email as typed on a sign-in form, if any."""
    text = login.strip()
    # Never send what cannot be a username or email to the database (NUL breaks PostgreSQL).
    if not text or len(text) > EMAIL_MAX or any(_is_control(ch) for ch in text):
        return None
    return await stores.accounts.get_by_login(text)


@dataclass(frozen=True)
class PasswordCheck:
    """What ``check_password`` found, to be recorded inside a transaction afterwards."""

    account: Account | None
    error: LwaAccountsError | None
    reason: str  # for the audit log: "ok", "throttled" or "wrong_password"
    new_hash: str | None = field(default=None, repr=False)  # upgraded parameters

    @property
    def ok(self) -> bool:
        return self.error is None


async def check_password(
    deps: AccountDeps,
    *,
    account: Account | None,
    account_key: str,
    password: str,
    client: ClientInfo,
) -> PasswordCheck:
    """Throttle and argon2, without touching the database. Refusals carry
    ``attempts_left`` (after this attempt) so a client can warn before the lockout.

    The attempt is reserved from the account's and the IP's budget before argon2 runs, so
    parallel guesses can never get more than the budget verified; a wrong password keeps
    it, the right one gives it back (and starts the account's budget again). A check that
    raises keeps it too: an unfinished check counts like a wrong one."""
    try:
        attempt = await deps.throttle.reserve_password(account_key, client.ip)
    except TooManyAttempts as error:
        return PasswordCheck(account, error, "throttled")
    password_hash = account.password_hash if account else None
    if password_hash is None or len(password) > PASSWORD_MAX:
        # Unknown login, no password, or longer than any password can be: spend one real
        # verification (of a bounded input) so the refusal takes the usual time.
        await verify_against_dummy(deps.hasher, password[:PASSWORD_MAX])
        ok = False
    else:
        ok = await deps.hasher.verify(password_hash, password)
    if not ok:
        left = attempt.failed()
        return PasswordCheck(account, InvalidCredentials(attempts_left=left), "wrong_password")
    assert password_hash is not None
    await attempt.succeeded()
    new_hash = None
    if deps.hasher.needs_rehash(password_hash):
        new_hash = await deps.hasher.hash(password)
    return PasswordCheck(account, None, "ok", new_hash)


async def record_password_check(
    stores: Stores, deps: AccountDeps, check: PasswordCheck, client: ClientInfo
) -> Refused | None:
    """Audit a refusal, or store an upgraded hash. None means the password was right and
    is still the account's password (it may have changed since it was checked)."""
    account_id = check.account.id if check.account else None
    if check.error is not None:
        kind = SIGN_IN_THROTTLED if check.reason == "throttled" else SIGN_IN_FAILED
        await _audit(stores, deps, kind, account_id, client, f"reason={check.reason}")
        return Refused(check.error)
    assert check.account is not None
    current = await stores.accounts.get(check.account.id)
    if current is None or current.password_hash != check.account.password_hash:
        await _audit(stores, deps, SIGN_IN_FAILED, account_id, client, "reason=password_changed")
        return Refused(InvalidCredentials())
    if check.new_hash is not None:
        await stores.accounts.update(current.id, password_hash=check.new_hash)
    return None


async def finish_password_sign_in(
    stores: Stores,
    deps: AccountDeps,
    check: PasswordCheck,
    *,
    kind: SessionKind,
    device_name: str | None,
    client: ClientInfo,
) -> SignedIn | Refused:
    """Record the check; on success start the session (the one way: ``start_session``)."""
    refused = await record_password_check(stores, deps, check, client)
    if refused is not None:
        return refused
    account = await stores.accounts.get(check.account.id) if check.account else None
    assert account is not None  # record_password_check refuses a vanished account
    if account.disabled:
        await _audit(stores, deps, SIGN_IN_FAILED, account.id, client, "reason=disabled")
        return Refused(AccountDisabled())
    return await start_session(
        stores,
        account,
        kind=kind,
        device_name=device_name,
        user_agent=client.user_agent,
        ip=client.ip,
        method="password",
    )


async def verify_password(
    stores: Stores,
    deps: AccountDeps,
    *,
    account: Account | None,
    account_key: str,
    password: str,
    client: ClientInfo,
) -> Refused | None:
    """The throttled password check inside one transaction (re-authentication, change
    password, and Amazon's "link with your local password" step). None means verified."""
    check = await check_password(
        deps, account=account, account_key=account_key, password=password, client=client
    )
    return await record_password_check(stores, deps, check, client)


# ---- signed-in actions ------------------------------------------------------------------------


async def sign_out(stores: Stores, deps: AccountDeps, session: Session, client: ClientInfo) -> None:
    await end_session(stores, session, client=client, clock=deps.clock)


def recently_authenticated(session: Session, deps: AccountDeps) -> bool:
    """True when the session proved its password (or Amazon) within recent_auth_seconds."""
    window = timedelta(seconds=deps.settings.recent_auth_seconds)
    return deps.clock.now() - session.authenticated_at <= window


async def reauthenticate(
    stores: Stores,
    deps: AccountDeps,
    *,
    session: Session,
    account: Account,
    password: str,
    client: ClientInfo,
) -> Refused | None:
    """Prove the password again: the session counts as freshly authenticated.

    For bearer (device) callers of the API: the token is kept, because a device cannot be
    handed a new token in the middle of an unrelated request (attach/detach Amazon answer
    with the account, not a session) and would be signed out by its own request. A token
    in a device's storage is not a fixation risk the way a planted cookie is. Browsers
    re-authenticate with ``finish_reauthentication``, which rotates the session instead.
    """
    refused = await verify_password(
        stores, deps, account=account, account_key=account.id, password=password, client=client
    )
    if refused is not None:
        return refused
    await stores.sessions.mark_authenticated(session.id)
    await _audit(stores, deps, REAUTHENTICATED, account.id, client, f"session={session.id}")
    return None


async def finish_reauthentication(
    stores: Stores,
    deps: AccountDeps,
    check: PasswordCheck,
    *,
    session: Session,
    client: ClientInfo,
) -> SignedIn | Refused:
    """A browser re-entered its password (``check_password`` ran outside the transaction):
    record the check and, if it holds, replace the session by a new one (security.md 19)."""
    refused = await record_password_check(stores, deps, check, client)
    if refused is not None:
        return refused
    account = await stores.accounts.get(session.account_id)
    if account is None:
        return Refused(NotAuthenticated())
    return await rotate_session(stores, deps, session=session, account=account, client=client)


async def rotate_session(
    stores: Stores,
    deps: AccountDeps,
    *,
    session: Session,
    account: Account,
    client: ClientInfo,
    method: str = "reauthentication",
) -> SignedIn:
    """A new session id for a browser that just proved itself again (no fixation): the old
    session ends, the new one (freshly authenticated) starts through ``start_session``.
    NotAuthenticated when the old session ended meanwhile (signed out elsewhere)."""
    if not await stores.sessions.revoke(account.id, session.id):
        raise NotAuthenticated("The session is unknown, expired or signed out.")
    signed_in = await start_session(
        stores,
        account,
        kind=session.kind,
        device_name=session.device_name,
        user_agent=client.user_agent,
        ip=client.ip,
        method=method,
    )
    await _audit(
        stores,
        deps,
        REAUTHENTICATED,
        account.id,
        client,
        f"session={signed_in.session.id} replaces={session.id}",
    )
    return signed_in


async def change_password(
    stores: Stores,
    deps: AccountDeps,
    *,
    session: Session,
    account: Account,
    current_password: str | None,
    new_password: str,
    client: ClientInfo,
) -> Refused | None:
    """Set a new password and end every other session of the account.

    An account with a password must give it; one without (created through Amazon) may
    set one only within a recent sign-in. All in the caller's transaction; request
    handlers run ``prepare_password_change`` (argon2, no database) before it and
    ``finish_password_change`` inside it.
    """
    prepared = await prepare_password_change(
        deps,
        account=account,
        current_password=current_password,
        new_password=new_password,
        client=client,
    )
    return await finish_password_change(
        stores, deps, prepared, session=session, account=account, client=client
    )


@dataclass(frozen=True)
class PreparedPasswordChange:
    """The current password checked (None: the account has none) and the new one hashed."""

    check: PasswordCheck | None
    new_hash: str | None = field(repr=False)  # None when the check failed


async def prepare_password_change(
    deps: AccountDeps,
    *,
    account: Account,
    current_password: str | None,
    new_password: str,
    client: ClientInfo,
) -> PreparedPasswordChange:
    """Validate the new password (ValidationFailed), check the current one (throttled) and
    hash the new one, touching no database."""
    checked = validate_password(new_password, deps.common_passwords)
    if isinstance(checked, Invalid):
        raise ValidationFailed(errors={"new_password": checked.message})
    check: PasswordCheck | None = None
    if account.has_password:
        if not current_password:
            raise ValidationFailed(errors={"current_password": "Enter your current password."})
        check = await check_password(
            deps, account=account, account_key=account.id, password=current_password, client=client
        )
    new_hash = await deps.hasher.hash(new_password) if check is None or check.ok else None
    return PreparedPasswordChange(check=check, new_hash=new_hash)


async def finish_password_change(
    stores: Stores,
    deps: AccountDeps,
    prepared: PreparedPasswordChange,
    *,
    session: Session,
    account: Account,
    client: ClientInfo,
) -> Refused | None:
    """Record the check (refused if the password changed since), store the new hash and
    end the account's other sessions."""
    if prepared.check is not None:
        refused = await record_password_check(stores, deps, prepared.check, client)
        if refused is not None:
            return refused
    elif not recently_authenticated(session, deps):
        raise ReauthenticationRequired()
    assert prepared.new_hash is not None  # hashed whenever the check passed
    await stores.accounts.update(account.id, password_hash=prepared.new_hash)
    ended = await stores.sessions.revoke_all(account.id, except_session_id=session.id)
    await _audit(
        stores, deps, PASSWORD_CHANGED, account.id, client, f"other_sessions_ended={ended}"
    )
    return None


async def list_sessions(stores: Stores, account: Account) -> Sequence[Session]:
    return await stores.sessions.list_for_account(account.id)


async def revoke_session(
    stores: Stores,
    deps: AccountDeps,
    *,
    account: Account,
    session_id: str,
    client: ClientInfo,
) -> None:
    """End one of the account's own sessions; NotFound for anything else."""
    if not _looks_like_id(session_id) or not await stores.sessions.revoke(account.id, session_id):
        raise NotFound("No such session.")
    await _audit(stores, deps, SESSION_REVOKED, account.id, client, f"session={session_id}")


# ---- helpers ------------------------------------------------------------------------------------


async def _audit(
    stores: Stores,
    deps: AccountDeps,
    kind: str,
    account_id: str | None,
    client: ClientInfo,
    detail: str,
) -> None:
    await stores.audit.record(
        AuditEvent(
            kind=kind, at=deps.clock.now(), account_id=account_id, ip=client.ip, detail=detail
        )
    )


def _looks_like_id(value: str) -> bool:
    return (
        0 < len(value) <= 64
        and value.isascii()
        and value.replace("_", "").replace("-", "").isalnum()
    )


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn")
