"""Request handlers' sequences: slow work outside any transaction, the change inside one.

argon2 (~20 ms) and Amazon's round trips must hold no database connection and no SQLite
write lock (security.md item 3; one writer would queue every other request behind them).
So a request that checks a password runs in phases: a short transaction to find what the
password is checked against, the check with no transaction open, a second short
transaction that re-checks what may have changed meanwhile and finishes. ``in_phases``
is that sequence, once; the named helpers are what the pages, the JSON API and the phone
pages call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from lwa_accounts.core.models import Account, Session, SessionKind
from lwa_accounts.flows.accounts import (
    PreparedAccount,
    create_prepared,
    finish_password_sign_in,
    prepare_registration,
)
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.credentials import (
    finish_password_change,
    finish_reauthentication,
    prepare_password_change,
)
from lwa_accounts.flows.passwords import PasswordCheck, check_password, find_login, login_key
from lwa_accounts.flows.sessions import SignedIn

Begun = TypeVar("Begun")
Checked = TypeVar("Checked")
Result = TypeVar("Result")


async def in_phases(
    ctx: Context,
    begin: Callable[[Tx], Awaitable[Begun]],
    check: Callable[[Begun], Awaitable[Checked]],
    finish: Callable[[Tx, Begun, Checked], Awaitable[Result]],
) -> Result:
    """``begin`` in one short transaction, ``check`` outside any, ``finish`` in a second
    one (which must re-check whatever ``begin`` found). A refusal raised by ``finish`` is
    audited through the rollback like any other (``Context.transaction``)."""
    async with ctx.transaction() as tx:
        begun = await begin(tx)
    checked = await check(begun)
    async with ctx.transaction() as tx:
        return await finish(tx, begun, checked)


async def password_sign_in(
    ctx: Context, *, login: str, password: str, kind: SessionKind, device_name: str | None
) -> SignedIn:
    """Username or email + password -> a new session (``flows.accounts``' rules)."""

    async def begin(tx: Tx) -> Account | None:
        return await find_login(tx, login)

    async def check(account: Account | None) -> PasswordCheck:
        key = login_key(account, login)
        return await check_password(ctx, account=account, account_key=key, password=password)

    async def finish(tx: Tx, _: Account | None, checked: PasswordCheck) -> SignedIn:
        return await finish_password_sign_in(tx, checked, kind=kind, device_name=device_name)

    return await in_phases(ctx, begin, check, finish)


async def reauthenticate_browser(
    ctx: Context, *, session: Session, account: Account, password: str
) -> SignedIn:
    """A browser proves its password again and gets a new session (security.md 19)."""
    checked = await check_password(ctx, account=account, account_key=account.id, password=password)
    async with ctx.transaction() as tx:
        return await finish_reauthentication(tx, checked, session=session)


async def register_with_password(
    ctx: Context, *, username: str, email: str | None, name: str, password: str
) -> Account:
    """Validate, reserve and hash outside any transaction, then create: a failure up to the
    commit gives the registration's reservation back (``prepare_registration``)."""
    async with prepare_registration(
        ctx, username=username, email=email, name=name, password=password
    ) as prepared:
        return await _create(ctx, prepared)


async def _create(ctx: Context, prepared: PreparedAccount) -> Account:
    async with ctx.transaction() as tx:
        return await create_prepared(tx, prepared)


async def change_password(
    ctx: Context,
    *,
    session: Session,
    account: Account,
    current_password: str | None,
    new_password: str,
) -> None:
    """Check the current password and hash the new one outside any transaction, then store
    it and end the account's other sessions (``flows.credentials``)."""
    prepared = await prepare_password_change(
        ctx, account=account, current_password=current_password, new_password=new_password
    )
    async with ctx.transaction() as tx:
        await finish_password_change(tx, prepared, session=session, account=account)
