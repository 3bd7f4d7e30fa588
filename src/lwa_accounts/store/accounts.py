"""SQL implementation of ``interfaces.AccountStore``."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts import errors
from lwa_accounts.core.models import Account, NewAccount
from lwa_accounts.core.validation import email_key
from lwa_accounts.interfaces import Clock
from lwa_accounts.store.savepoints import own_savepoint
from lwa_accounts.store.schema import accounts

ACCOUNT_ID_PREFIX = "acc_"
LIST_MAX = 1000


def new_account_id() -> str:
    # 16 random bytes -> 22 URL-safe characters: not guessable, not enumerable.
    return ACCOUNT_ID_PREFIX + secrets.token_urlsafe(16)


def blank_to_none(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def account_from_row(row: Row[Any]) -> Account:
    m = row._mapping
    return Account(
        id=m[accounts.c.id],
        username=m[accounts.c.username],
        email=m[accounts.c.email],
        name=m[accounts.c.name],
        email_verified=m[accounts.c.email_verified],
        disabled=m[accounts.c.disabled],
        created_at=m[accounts.c.created_at],
        updated_at=m[accounts.c.updated_at],
        password_hash=m[accounts.c.password_hash],
        postal_code=m[accounts.c.postal_code],
    )


def violated_constraint(exc: IntegrityError) -> str:
    """Which constraint failed: its name on PostgreSQL, ``table.column`` on SQLite.

    Never the offending value, so a username that spells a column name cannot mislead.
    """
    cause = exc.orig.__cause__ if exc.orig is not None else None
    name = getattr(cause, "constraint_name", None)  # asyncpg's UniqueViolationError
    if isinstance(name, str):
        return name
    # SQLite: "UNIQUE constraint failed: accounts.email_normalized"
    message = str(exc.orig)
    return message.partition("constraint failed:")[2].strip() or message


def raise_conflict(exc: IntegrityError) -> None:
    """Turn a unique-constraint violation into the matching domain error, else re-raise."""
    constraint = violated_constraint(exc)
    if constraint in ("uq_accounts_email_normalized", "accounts.email_normalized"):
        raise errors.EmailTaken() from exc
    if constraint in ("uq_accounts_username", "accounts.username"):
        raise errors.UsernameTaken() from exc
    raise exc


# Built once (issue 11): compiled once, then only parameters change.
_BY_ID = select(accounts).where(accounts.c.id == bindparam("key"))
_BY_USERNAME = select(accounts).where(accounts.c.username == bindparam("key"))
_BY_EMAIL = select(accounts).where(accounts.c.email_normalized == bindparam("key"))


class SqlAccountStore:
    def __init__(self, connection: AsyncConnection, clock: Clock) -> None:
        self._conn = connection
        self._clock = clock

    async def _one(self, stmt: Select[Any], key: str | None = None) -> Account | None:
        params = {"key": key} if key is not None else None
        row = (await self._conn.execute(stmt, params)).first()
        return account_from_row(row) if row is not None else None

    async def get(self, account_id: str) -> Account | None:
        return await self._one(_BY_ID, account_id)

    async def get_by_username(self, username: str) -> Account | None:
        # Stored lower-case; lower() only ASCII so that e.g. KELVIN SIGN does not match "k".
        key = username.strip()
        if not key.isascii():
            return None
        return await self._one(_BY_USERNAME, key.lower())

    async def get_by_email(self, email: str) -> Account | None:
        return await self._one(_BY_EMAIL, email_key(email))

    async def get_by_login(self, login: str) -> Account | None:
        # Usernames cannot contain "@", so the form is unambiguous.
        if "@" in login:
            return await self.get_by_email(login)
        return await self.get_by_username(login)

    async def lock(self, account_id: str) -> Account | None:
        stmt = select(accounts).where(accounts.c.id == account_id)
        # SQLite needs no row lock: its write transactions are serialised (BEGIN IMMEDIATE).
        if self._conn.dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        return await self._one(stmt)

    async def create(self, new: NewAccount) -> Account:
        now = self._clock.now()
        email = new.email if new.email is not None and new.email.strip() else None
        account = Account(
            id=new_account_id(),
            username=new.username.strip().lower(),
            email=email,
            name=new.name,
            email_verified=new.email_verified,
            disabled=False,
            created_at=now,
            updated_at=now,
            password_hash=new.password_hash,
            postal_code=blank_to_none(new.postal_code),
        )
        values = {
            "id": account.id,
            "username": account.username,
            "email": account.email,
            "email_normalized": email_key(account.email) if account.email is not None else None,
            "name": account.name,
            "postal_code": account.postal_code,
            "password_hash": account.password_hash,
            "email_verified": account.email_verified,
            "disabled": account.disabled,
            "created_at": now,
            "updated_at": now,
        }
        try:
            # A savepoint keeps the caller's transaction usable after a conflict.
            async with own_savepoint(self._conn):
                await self._conn.execute(insert(accounts).values(**values))
        except IntegrityError as exc:
            raise_conflict(exc)
        return account

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
        """Change only the given fields; ``email=""`` (or ``postal_code=""``) removes it.

        Raises EmailTaken on conflict, NotFound for an unknown account.
        """
        values: dict[str, Any] = {"updated_at": self._clock.now()}
        if name is not None:
            values["name"] = name
        if email is not None:
            # A blank key would collide between every account without an address.
            values["email"] = email if email.strip() else None
            values["email_normalized"] = email_key(email) if email.strip() else None
        if email_verified is not None:
            values["email_verified"] = email_verified
        if password_hash is not None:
            values["password_hash"] = password_hash
        if postal_code is not None:
            values["postal_code"] = blank_to_none(postal_code)
        # RETURNING: the updated row without reading it again (SQLite >= 3.35, PostgreSQL).
        stmt = (
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(**values)
            .returning(*accounts.c)
        )
        try:
            async with self._conn.begin_nested():
                row = (await self._conn.execute(stmt)).first()
        except IntegrityError as exc:
            raise_conflict(exc)
        if row is None:
            raise errors.NotFound("No such account.")
        return account_from_row(row)

    async def set_disabled(self, account_id: str, disabled: bool) -> Account:
        """Disable or enable; NotFound for an unknown account."""
        stmt = (
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(disabled=disabled, updated_at=self._clock.now())
        )
        if (await self._conn.execute(stmt)).rowcount == 0:
            raise errors.NotFound("No such account.")
        account = await self.get(account_id)
        assert account is not None  # updated just above, in this transaction
        return account

    async def list(self, limit: int = 100, offset: int = 0) -> Sequence[Account]:
        """Accounts, oldest first (for the CLI)."""
        limit = max(0, min(limit, LIST_MAX))
        stmt = (
            select(accounts)
            .order_by(accounts.c.created_at, accounts.c.id)
            .limit(limit)
            .offset(max(0, offset))
        )
        return [account_from_row(row) for row in await self._conn.execute(stmt)]
