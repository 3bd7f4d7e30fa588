"""Proving the password again, and changing it.

A signed-in person proves the password again before sensitive changes (attach or detach
Amazon, security.md 19): a browser gets a new session id for it (``finish_reauthentication``
-> ``rotate_session``: no fixation), a device keeps its token (``reauthenticate``). A new
password ends every other session of the account and notifies its address
(``flows/notices.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from lwa_accounts.core.models import Account, Session
from lwa_accounts.core.validation import Invalid, validate_password
from lwa_accounts.errors import NotAuthenticated, ReauthenticationRequired, ValidationFailed
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Deps, Tx
from lwa_accounts.flows.notices import describe_session, notify
from lwa_accounts.flows.passwords import (
    PasswordCheck,
    check_password,
    record_password_check,
    verify_password,
)
from lwa_accounts.flows.sessions import SignedIn, start_session


def recently_authenticated(session: Session, deps: Deps) -> bool:
    """True when the session proved its password (or Amazon) within recent_auth_seconds."""
    window = timedelta(seconds=deps.settings.recent_auth_seconds)
    return deps.clock.now() - session.authenticated_at <= window


async def reauthenticate(tx: Tx, *, session: Session, account: Account, password: str) -> None:
    """Prove the password again: the session counts as freshly authenticated.

    For bearer (device) callers of the API: the token is kept, because a device cannot be
    handed a new token in the middle of an unrelated request (attach/detach Amazon answer
    with the account, not a session) and would be signed out by its own request. A token
    in a device's storage is not a fixation risk the way a planted cookie is. Browsers
    re-authenticate with ``finish_reauthentication``, which rotates the session instead.
    """
    await verify_password(tx, account=account, account_key=account.id, password=password)
    await tx.sessions.mark_authenticated(session.id)
    tx.audit(Event.REAUTHENTICATED, account_id=account.id, detail=f"session={session.id}")


async def require_recent_auth(
    tx: Tx, *, session: Session, account: Account, password: str | None
) -> None:
    """A sign-in within ``recent_auth_seconds``, or the password now (devices' API calls);
    ReauthenticationRequired (403) otherwise."""
    if password:
        # Only bearer (device) callers of the API pass the password here; their token is
        # kept (see ``reauthenticate``). Browser pages re-authenticate before this and get
        # a new session (``finish_reauthentication``).
        await reauthenticate(tx, session=session, account=account, password=password)
    elif not recently_authenticated(session, tx.deps):
        raise ReauthenticationRequired()


async def finish_reauthentication(tx: Tx, check: PasswordCheck, *, session: Session) -> SignedIn:
    """A browser re-entered its password (``check_password`` ran outside the transaction):
    record the check and, if it holds, replace the session by a new one (security.md 19)."""
    await record_password_check(tx, check)
    account = await tx.accounts.get(session.account_id)
    if account is None:
        raise NotAuthenticated()
    return await rotate_session(tx, session=session, account=account)


async def rotate_session(
    tx: Tx, *, session: Session, account: Account, method: str = "reauthentication"
) -> SignedIn:
    """A new session id for a browser that just proved itself again (no fixation): the old
    session ends, the new one (freshly authenticated) starts through ``start_session``.
    NotAuthenticated when the old session ended meanwhile (signed out elsewhere)."""
    if not await tx.sessions.revoke(account.id, session.id):
        raise NotAuthenticated("The session is unknown, expired or signed out.")
    signed_in = await start_session(
        tx,
        account,
        kind=session.kind,
        device_name=session.device_name,
        method=method,
        replaces_session=True,
    )
    tx.audit(
        Event.REAUTHENTICATED,
        account_id=account.id,
        detail=f"session={signed_in.session.id} replaces={session.id}",
    )
    return signed_in


# ---- password change ----------------------------------------------------------------------


async def change_password(
    tx: Tx,
    *,
    session: Session,
    account: Account,
    current_password: str | None,
    new_password: str,
) -> None:
    """Set a new password and end every other session of the account.

    An account with a password must give it; one without (created through Amazon) may
    set one only within a recent sign-in. All in one transaction; request handlers run
    ``prepare_password_change`` (argon2, no database) before it and
    ``finish_password_change`` inside it.
    """
    prepared = await prepare_password_change(
        tx.context, account=account, current_password=current_password, new_password=new_password
    )
    await finish_password_change(tx, prepared, session=session, account=account)


@dataclass(frozen=True)
class PreparedPasswordChange:
    """The current password checked (None: the account has none) and the new one hashed."""

    check: PasswordCheck | None
    new_hash: str | None = field(repr=False)  # None when the check failed


async def prepare_password_change(
    ctx: Context, *, account: Account, current_password: str | None, new_password: str
) -> PreparedPasswordChange:
    """Validate the new password (ValidationFailed), check the current one (throttled) and
    hash the new one, touching no database."""
    checked = validate_password(new_password, ctx.deps.common_passwords)
    if isinstance(checked, Invalid):
        raise ValidationFailed(errors={"new_password": checked.message})
    check: PasswordCheck | None = None
    if account.has_password:
        if not current_password:
            raise ValidationFailed(errors={"current_password": "Enter your current password."})
        check = await check_password(
            ctx, account=account, account_key=account.id, password=current_password
        )
    new_hash = await ctx.deps.hasher.hash(new_password) if check is None or check.ok else None
    return PreparedPasswordChange(check=check, new_hash=new_hash)


async def finish_password_change(
    tx: Tx, prepared: PreparedPasswordChange, *, session: Session, account: Account
) -> None:
    """Record the check (refused if the password changed since), store the new hash and
    end the account's other sessions."""
    if prepared.check is not None:
        await record_password_check(tx, prepared.check)
    elif not recently_authenticated(session, tx.deps):
        raise ReauthenticationRequired()
    assert prepared.new_hash is not None  # hashed whenever the check passed
    await tx.accounts.update(account.id, password_hash=prepared.new_hash)
    ended = await tx.sessions.revoke_all(account.id, except_session_id=session.id)
    tx.audit(Event.PASSWORD_CHANGED, account_id=account.id, detail=f"other_sessions_ended={ended}")
    await notify(tx, account, "password_changed", device=describe_session(session))
