"""Checking a password: the throttle, argon2, and recording the outcome.

A check runs in two halves so argon2 (~20 ms) holds no connection and no SQLite write
lock: ``check_password`` (no database: the throttle reservation, then argon2) and
``record_password_check`` (inside a transaction: audit a refusal, refuse a password that
changed since it was checked, store an upgraded hash). ``flows/phases.py`` runs the
halves for request handlers; ``verify_password`` runs both inside one transaction.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from lwa_accounts.core.models import Account
from lwa_accounts.core.validation import EMAIL_MAX, PASSWORD_MAX, email_key
from lwa_accounts.errors import InvalidCredentials, LwaAccountsError, TooManyAttempts
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.known_devices import recognise
from lwa_accounts.passwords import verify_against_dummy


def login_key(account: Account | None, login: str) -> str:
    """The throttle key: the account id, or the login as typed when no account matches, so
    a budget belongs to the account however it is spelled and unknown logins are throttled
    alike."""
    return account.id if account else "login:" + email_key(login)[:EMAIL_MAX]


async def find_login(tx: Tx, login: str) -> Account | None:
    """The account for a username or email as typed on a sign-in form, if any."""
    text = login.strip()
    # Never send what cannot be a username or email to the database (NUL breaks PostgreSQL).
    if not text or len(text) > EMAIL_MAX or any(_is_control(ch) for ch in text):
        return None
    return await tx.accounts.get_by_login(text)


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
    ctx: Context, *, account: Account | None, account_key: str, password: str
) -> PasswordCheck:
    """Throttle and argon2, without touching the database. Refusals carry
    ``attempts_left`` (after this attempt) so a client can warn before the lockout.

    The attempt is reserved from the account's and the IP's budget (a known device's own,
    when the client proves it signed in to this account before) before argon2 runs, so
    parallel guesses can never get more than the budget verified; a wrong password keeps
    it, the right one gives it back (and starts the account's budget again). A check that
    raises keeps it too: an unfinished check counts like a wrong one."""
    deps = ctx.deps
    device = recognise(ctx, account)
    try:
        attempt = await deps.throttle.reserve_password(account_key, ctx.client.ip, device=device)
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


async def record_password_check(tx: Tx, check: PasswordCheck) -> Account:
    """Raise the check's refusal (audited, and the audit kept through the rollback), or
    refuse a password changed since it was checked; store an upgraded hash. Returns the
    account as it is now."""
    account_id = check.account.id if check.account else None
    if check.error is not None:
        kind = Event.SIGN_IN_THROTTLED if check.reason == "throttled" else Event.SIGN_IN_FAILED
        tx.audit(kind, account_id=account_id, detail=f"reason={check.reason}")
        raise check.error
    assert check.account is not None
    current = await tx.accounts.get(check.account.id)
    if current is None or current.password_hash != check.account.password_hash:
        tx.audit(Event.SIGN_IN_FAILED, account_id=account_id, detail="reason=password_changed")
        raise InvalidCredentials()
    if check.new_hash is not None:
        current = await tx.accounts.update(current.id, password_hash=check.new_hash)
    return current


async def verify_password(
    tx: Tx, *, account: Account | None, account_key: str, password: str
) -> None:
    """The throttled password check inside one transaction (re-authentication by a
    device's API call); raises the refusal."""
    check = await check_password(
        tx.context, account=account, account_key=account_key, password=password
    )
    await record_password_check(tx, check)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn")
