"""Account use cases shared by the pages and the JSON API: register, password sign-in,
sign-out, list and revoke sessions. Re-authentication and password changes live in
``flows/credentials.py``, the password check itself in ``flows/passwords.py``.

Flows never commit and never import a web framework; they raise. A refusal that must
leave a trail (a wrong password, a throttled attempt) is audited with a *kept* event
kind, which survives the rollback (``flows/context.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from lwa_accounts.core.models import Account, NewAccount, Session, SessionKind
from lwa_accounts.core.validation import validate_registration
from lwa_accounts.errors import AccountDisabled, NotFound, ValidationFailed
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.email_verification import send_on_creation
from lwa_accounts.flows.known_devices import remember
from lwa_accounts.flows.passwords import (
    PasswordCheck,
    check_password,
    find_login,
    login_key,
    record_password_check,
)
from lwa_accounts.flows.sessions import SignedIn, end_session, start_session

# ---- registration ------------------------------------------------------------------------


async def register(
    tx: Tx, *, username: str, email: str | None, name: str, password: str
) -> Account:
    """Create a password account. Raises ValidationFailed, UsernameTaken, EmailTaken or
    TooManyAttempts (registrations per IP).

    Request handlers enter ``prepare_registration`` before opening the transaction (argon2
    holds no lock then) and call ``create_prepared`` inside it, so a failure anywhere up to
    the commit gives the registration's reservation back; this runs both in one transaction.
    """
    async with prepare_registration(
        tx.context, username=username, email=email, name=name, password=password
    ) as prepared:
        return await create_prepared(tx, prepared)


@dataclass(frozen=True)
class PreparedAccount:
    """A checked registration with its password already hashed."""

    new: NewAccount


@asynccontextmanager
async def prepare_registration(
    ctx: Context, *, username: str, email: str | None, name: str, password: str
) -> AsyncIterator[PreparedAccount]:
    """Validate every field (ValidationFailed), reserve one registration from the per-IP
    budget (TooManyAttempts) and hash the password; no database. Create the account (and
    commit) inside the block: the reservation is kept when the block ends normally and
    given back when it raises (taken, database down, ...), so the limit counts accounts
    actually created and parallel sign-ups can never exceed it."""
    deps = ctx.deps
    checked = validate_registration(
        username=username,
        email=email,
        name=name,
        password=password,
        common=deps.common_passwords,
    )
    if not checked.ok:
        raise ValidationFailed(errors=checked.errors)
    async with deps.throttle.reserving_registration(ctx.client.ip):
        new = NewAccount(
            username=checked.username,
            email=checked.email,
            name=checked.name,
            password_hash=await deps.hasher.hash(checked.password),
        )
        yield PreparedAccount(new=new)


async def create_prepared(tx: Tx, prepared: PreparedAccount) -> Account:
    """Store the account (UsernameTaken / EmailTaken on conflict), audit it and queue the
    verification mail for its address in the same transaction."""
    account = await tx.accounts.create(prepared.new)
    tx.audit(Event.ACCOUNT_REGISTERED, account_id=account.id, detail="method=password")
    if account.email is not None:
        await send_on_creation(tx, account, account.email, reason="registration")
    return account


# ---- password sign-in ----------------------------------------------------------------------


async def sign_in_with_password(
    tx: Tx, *, login: str, password: str, kind: SessionKind, device_name: str | None
) -> SignedIn:
    """Username or email + password -> a new session, all in one transaction.

    Throttled per account and per IP (the attempt is reserved before verifying); an
    unknown login verifies against a dummy hash so it takes as long as a wrong password;
    the hash is upgraded when the parameters changed. Every failure gets the same
    ``invalid_credentials`` answer. Request handlers use ``flows.phases.password_sign_in``
    instead, which runs argon2 outside any transaction.
    """
    account = await find_login(tx, login)
    check = await check_password(
        tx.context, account=account, account_key=login_key(account, login), password=password
    )
    return await finish_password_sign_in(tx, check, kind=kind, device_name=device_name)


async def finish_password_sign_in(
    tx: Tx, check: PasswordCheck, *, kind: SessionKind, device_name: str | None
) -> SignedIn:
    """Record the check; on success start the session (the one way: ``start_session``)
    and renew this client's known-device proof."""
    account = await record_password_check(tx, check)
    if account.disabled:
        tx.audit(Event.SIGN_IN_FAILED, account_id=account.id, detail="reason=disabled")
        raise AccountDisabled()
    signed_in = await start_session(
        tx, account, kind=kind, device_name=device_name, method="password"
    )
    return replace(signed_in, device_proof=remember(tx.context, account))


# ---- signed-in actions ------------------------------------------------------------------------


async def sign_out(tx: Tx, session: Session) -> None:
    await end_session(tx, session)


async def list_sessions(tx: Tx, account: Account) -> Sequence[Session]:
    return await tx.sessions.list_for_account(account.id)


async def revoke_session(tx: Tx, *, account: Account, session_id: str) -> None:
    """End one of the account's own sessions; NotFound for anything else."""
    if not _looks_like_id(session_id) or not await tx.sessions.revoke(account.id, session_id):
        raise NotFound("No such session.")
    tx.audit(Event.SESSION_REVOKED, account_id=account.id, detail=f"session={session_id}")


def _looks_like_id(value: str) -> bool:
    return (
        0 < len(value) <= 64
        and value.isascii()
        and value.replace("_", "").replace("-", "").isalnum()
    )
