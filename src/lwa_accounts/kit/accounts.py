"""``interfaces.AccountStore`` over a company's own users table (the integration kit).

Runs on the connection and transaction the edge opened, like every other store, so an
Amazon sign-in that creates a user and its link commits or rolls back as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, Select, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts import errors
from lwa_accounts.core.models import Account, NewAccount
from lwa_accounts.core.validation import email_key
from lwa_accounts.interfaces import Clock
from lwa_accounts.kit.mapping import UsersTableMapping
from lwa_accounts.store.savepoints import own_savepoint
from lwa_accounts.store.schema import ID_LENGTH

# Shown for tables without created/updated columns: "unknown", not a made-up date.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LIST_MAX = 1000
# Several rows differing only in case: an exact match wins, otherwise nobody does.
_CANDIDATES = 5
_INT64_MAX = 2**63 - 1


class ForeignAccountStore:
    def __init__(
        self,
        connection: AsyncConnection,
        clock: Clock,
        mapping: UsersTableMapping,
    ) -> None:
        self._conn = connection
        self._clock = clock
        self._mapping = mapping
        self._t = mapping.core_table

    # ---- reading ---------------------------------------------------------------------------

    def _account(self, row: Row[Any]) -> Account:
        m, c = row._mapping, self._t.c
        mp = self._mapping
        username = str(m[c.username])
        if mp.active_column is not None:
            disabled = not m[c.active]  # NULL: not known to be active
        elif mp.disabled_column is not None:
            disabled = bool(m[c.disabled])
        else:
            disabled = False
        created = m[c.created_at] if mp.created_column else None
        updated = m[c.updated_at] if mp.updated_column else None
        return Account(
            id=str(m[c.id]),
            username=username,
            email=(m[c.email] or None) if mp.email_column else None,
            name=(m[c.name] if mp.name_column else None) or username,
            email_verified=bool(m[c.email_verified]) if mp.email_verified_column else False,
            disabled=disabled,
            created_at=created or UNKNOWN_TIME,
            updated_at=updated or created or UNKNOWN_TIME,
            password_hash=self._password_of(m[c.password_hash]),
            postal_code=(m[c.postal_code] or None) if mp.postal_code_column else None,
        )

    def _password_of(self, stored: str | None) -> str | None:
        # "!..." is the Django/Unix convention for "no usable password".
        if not stored or stored == self._mapping.no_password_value or stored.startswith("!"):
            return None
        return stored

    def _id_value(self, account_id: str) -> int | str | None:
        """The id column's value for an account id, or None if it cannot be one."""
        if not self._mapping.integer_ids:
            return account_id if 0 < len(account_id) <= ID_LENGTH else None
        if not (account_id.isascii() and account_id.isdigit()) or len(account_id) > 19:
            return None
        value = int(account_id)
        return value if value <= _INT64_MAX else None

    async def _one(self, stmt: Select[Any]) -> Account | None:
        row = (await self._conn.execute(stmt)).first()
        return self._account(row) if row is not None else None

    async def _case_insensitive(
        self, field: Literal["username", "email"], key: str, exact: str
    ) -> Account | None:
        column = self._t.c[field]
        stmt = select(self._t).where(func.lower(column) == key).limit(_CANDIDATES)
        rows = [self._account(row) for row in await self._conn.execute(stmt)]
        if len(rows) == 1:
            return rows[0]
        # Ambiguous in a table that never enforced case-insensitive uniqueness.
        matches = [a for a in rows if getattr(a, field) == exact]
        return matches[0] if len(matches) == 1 else None

    async def get(self, account_id: str) -> Account | None:
        value = self._id_value(account_id)
        if value is None:
            return None
        return await self._one(select(self._t).where(self._t.c.id == value))

    async def get_by_username(self, username: str) -> Account | None:
        key = username.strip()
        # A character whose lower case is ASCII while it is not (KELVIN SIGN -> "k") would
        # let a homoglyph find someone else's login: never a username.
        if not key or key.isascii() != key.lower().isascii():
            return None
        return await self._case_insensitive("username", key.lower(), key)

    async def get_by_email(self, email: str) -> Account | None:
        if self._mapping.email_column is None or not email.strip():
            return None
        return await self._case_insensitive("email", email_key(email), email.strip())

    async def get_by_login(self, login: str) -> Account | None:
        # Legacy logins may themselves be email addresses, so "@" only orders the lookups.
        if "@" in login:
            return await self.get_by_email(login) or await self.get_by_username(login)
        return await self.get_by_username(login)

    async def lock(self, account_id: str) -> Account | None:
        value = self._id_value(account_id)
        if value is None:
            return None
        stmt = select(self._t).where(self._t.c.id == value)
        # SQLite serialises write transactions (BEGIN IMMEDIATE): no row locks there.
        if self._conn.dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        return await self._one(stmt)

    async def list(self, limit: int = 100, offset: int = 0) -> Sequence[Account]:
        c = self._t.c
        order = [c.created_at, c.id] if self._mapping.created_column else [c.id]
        stmt = (
            select(self._t)
            .order_by(*order)
            .limit(max(0, min(limit, LIST_MAX)))
            .offset(max(0, offset))
        )
        return [self._account(row) for row in await self._conn.execute(stmt)]

    # ---- writing ---------------------------------------------------------------------------

    async def _taken(self, column: Any, key: str, *, other_than: Any = None) -> bool:
        cond: ColumnElement[bool] = func.lower(column) == key
        if other_than is not None:
            cond = cond & (self._t.c.id != other_than)
        stmt = select(self._t.c.id).where(cond).limit(1)
        return (await self._conn.execute(stmt)).first() is not None

    async def _check_free(
        self, *, username: str | None, email: str | None, other_than: Any = None
    ) -> None:
        await self._serialize(username=username, email=email)
        if username is not None and await self._taken(self._t.c.username, username.lower()):
            raise errors.UsernameTaken()
        if (
            email is not None
            and self._mapping.email_column is not None
            and await self._taken(self._t.c.email, email_key(email), other_than=other_than)
        ):
            raise errors.EmailTaken()

    async def _serialize(self, *, username: str | None, email: str | None) -> None:
        """PostgreSQL: take a transaction lock per case-folded username and e-mail first.

        The company's table may enforce only case-sensitive uniqueness, so "Racer" and
        "racer" would both pass a check-then-insert run in parallel; with the lock, the
        second creator waits for the first's commit and then sees its row (READ
        COMMITTED). SQLite needs none: it has one writer at a time.
        """
        if self._conn.dialect.name != "postgresql":
            return
        keys = [f"kit-username:{username.lower()}"] if username is not None else []
        if email is not None and self._mapping.email_column is not None:
            keys.append(f"kit-email:{email_key(email)}")
        for key in sorted(keys):  # one order for every transaction: no deadlock
            await self._conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
            )

    async def create(self, new: NewAccount) -> Account:
        """Insert into the foreign table. Raises UsernameTaken / EmailTaken.

        Checked before inserting (the table may lack case-insensitive unique indexes) and
        again after a unique-constraint conflict, to name the right field.
        """
        mp, now = self._mapping, self._clock.now()
        username = new.username.strip()
        email = new.email.strip() if new.email is not None and new.email.strip() else None
        values: dict[str, Any] = {
            "username": username,
            "password_hash": new.password_hash
            if new.password_hash is not None
            else mp.no_password_value,
        }
        if mp.email_column:
            values["email"] = email
        if mp.name_column:
            values["name"] = new.name
        if mp.active_column:
            values["active"] = True
        if mp.disabled_column:
            values["disabled"] = False
        if mp.email_verified_column:
            values["email_verified"] = new.email_verified
        if mp.postal_code_column:
            values["postal_code"] = (new.postal_code or "").strip() or None
        if mp.created_column:
            values["created_at"] = now
        if mp.updated_column:
            values["updated_at"] = now
        if mp.new_text_id is not None:
            values["id"] = mp.new_text_id()
        await self._check_free(username=username, email=email)
        try:
            # A savepoint keeps the caller's transaction usable after a conflict.
            async with own_savepoint(self._conn):
                result = await self._conn.execute(
                    insert(self._t).values(**values).returning(self._t.c.id)
                )
                new_id = result.scalar_one()
        except IntegrityError:
            await self._check_free(username=username, email=email)
            raise
        account = await self.get(str(new_id))
        if account is None:  # pragma: no cover - inserted just above, in this transaction
            raise errors.NotFound("The new account vanished.")
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
        """Change only the given (and mapped) fields; ``email=""`` (or ``postal_code=""``)
        removes it.

        Raises EmailTaken on conflict, NotFound for an unknown account.
        """
        mp = self._mapping
        id_value = self._id_value(account_id)
        if id_value is None:
            raise errors.NotFound("No such account.")
        values: dict[str, Any] = {}
        if mp.updated_column:
            values["updated_at"] = self._clock.now()
        if name is not None and mp.name_column:
            values["name"] = name
        if email is not None and mp.email_column:
            values["email"] = email.strip() or None
            if email.strip():
                await self._check_free(username=None, email=email, other_than=id_value)
        if email_verified is not None and mp.email_verified_column:
            values["email_verified"] = email_verified
        if password_hash is not None:
            values["password_hash"] = password_hash
        if postal_code is not None and mp.postal_code_column:
            values["postal_code"] = postal_code.strip() or None
        if values:
            stmt = update(self._t).where(self._t.c.id == id_value).values(**values)
            try:
                async with self._conn.begin_nested():
                    await self._conn.execute(stmt)
            except IntegrityError:
                if email is not None and email.strip():
                    await self._check_free(username=None, email=email, other_than=id_value)
                raise
        account = await self.get(account_id)
        if account is None:
            raise errors.NotFound("No such account.")
        return account

    async def set_disabled(self, account_id: str, disabled: bool) -> Account:
        """Write the mapped flag (``active`` = not disabled, or ``disabled``); NotSupported
        when the table has neither, NotFound for an unknown account."""
        mp = self._mapping
        values: dict[str, Any] = {}
        if mp.active_column is not None:
            values["active"] = not disabled
        elif mp.disabled_column is not None:
            values["disabled"] = disabled
        else:
            raise errors.NotSupported(
                "The users table has no active or disabled column to record this in."
            )
        if mp.updated_column:
            values["updated_at"] = self._clock.now()
        id_value = self._id_value(account_id)
        if id_value is None:
            raise errors.NotFound("No such account.")
        stmt = update(self._t).where(self._t.c.id == id_value).values(**values)
        if (await self._conn.execute(stmt)).rowcount == 0:
            raise errors.NotFound("No such account.")
        account = await self.get(account_id)
        if account is None:  # pragma: no cover - updated just above, in this transaction
            raise errors.NotFound("No such account.")
        return account
