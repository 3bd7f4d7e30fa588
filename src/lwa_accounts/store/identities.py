"""SQL implementation of ``interfaces.IdentityStore``: Amazon ``user_id`` <-> local account.

Both directions are unique (primary key on the Amazon id, unique account id), so the
database itself guarantees one identity per account and one account per identity, even
under concurrent sign-ins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts import errors
from lwa_accounts.core.models import Account, AmazonLink
from lwa_accounts.store.accounts import account_from_row
from lwa_accounts.store.savepoints import own_savepoint
from lwa_accounts.store.schema import accounts, amazon_identities

NAME_MAX = 255
EMAIL_MAX = 254
POSTAL_CODE_MAX = 32
CLIENT_ID_MAX = 128


def link_from_row(row: Row[Any]) -> AmazonLink:
    m = row._mapping
    return AmazonLink(
        amazon_user_id=m[amazon_identities.c.amazon_user_id],
        account_id=m[amazon_identities.c.account_id],
        client_id=m[amazon_identities.c.client_id],
        name=m[amazon_identities.c.name],
        email=m[amazon_identities.c.email],
        postal_code=m[amazon_identities.c.postal_code],
        linked_at=m[amazon_identities.c.linked_at],
        last_sign_in_at=m[amazon_identities.c.last_sign_in_at],
        pending_email=m[amazon_identities.c.pending_email],
    )


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def _seen_values(link: AmazonLink) -> dict[str, Any]:
    return {
        "client_id": _clip(link.client_id, CLIENT_ID_MAX),
        "name": _clip(link.name, NAME_MAX),
        "email": _clip(link.email, EMAIL_MAX),
        "postal_code": _clip(link.postal_code, POSTAL_CODE_MAX),
        "last_sign_in_at": link.last_sign_in_at,
        "pending_email": _clip(link.pending_email, EMAIL_MAX),
    }


# Built once (issue 11): a statement built per call costs its construction and its cache
# key on every execution; these are compiled once and then only take parameters.
_BY_USER_ID = select(amazon_identities).where(
    amazon_identities.c.amazon_user_id == bindparam("amazon_user_id")
)
_FOR_ACCOUNT = select(amazon_identities).where(
    amazon_identities.c.account_id == bindparam("account_id")
)
_LINKED = (
    select(amazon_identities, accounts)
    .join(accounts, accounts.c.id == amazon_identities.c.account_id)
    .where(amazon_identities.c.amazon_user_id == bindparam("amazon_user_id"))
)
_UPDATE_SEEN = update(amazon_identities).where(
    amazon_identities.c.amazon_user_id == bindparam("link_amazon_user_id")
)


class SqlIdentityStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get_by_amazon_user_id(self, amazon_user_id: str) -> AmazonLink | None:
        row = (await self._conn.execute(_BY_USER_ID, {"amazon_user_id": amazon_user_id})).first()
        return link_from_row(row) if row is not None else None

    async def get_for_account(self, account_id: str) -> AmazonLink | None:
        row = (await self._conn.execute(_FOR_ACCOUNT, {"account_id": account_id})).first()
        return link_from_row(row) if row is not None else None

    async def get_linked(self, amazon_user_id: str) -> tuple[AmazonLink, Account] | None:
        """One join by the primary key: a returning sign-in reads nothing else."""
        row = (await self._conn.execute(_LINKED, {"amazon_user_id": amazon_user_id})).first()
        return (link_from_row(row), account_from_row(row)) if row is not None else None

    async def link(self, link: AmazonLink) -> AmazonLink:
        """Raises AmazonLinkedElsewhere (identity taken) or AlreadyLinked (account taken)."""
        values = _seen_values(link) | {
            "amazon_user_id": link.amazon_user_id,
            "account_id": link.account_id,
            "linked_at": link.linked_at,
        }
        try:
            async with own_savepoint(self._conn):
                await self._conn.execute(insert(amazon_identities).values(**values))
        except IntegrityError as exc:
            # PostgreSQL names the constraint, SQLite the column: both contain the column.
            message = str(exc.orig)
            if "account_id" in message:
                raise errors.AlreadyLinked() from exc
            if "amazon_user_id" in message or "pk_amazon_identities" in message:
                raise errors.AmazonLinkedElsewhere() from exc
            raise
        return link

    async def update_seen(self, link: AmazonLink) -> AmazonLink:
        """Store the profile last seen (and pending email) of an existing link."""
        await self._conn.execute(
            _UPDATE_SEEN, _seen_values(link) | {"link_amazon_user_id": link.amazon_user_id}
        )
        return link

    async def unlink(self, account_id: str) -> bool:
        result = await self._conn.execute(
            delete(amazon_identities).where(amazon_identities.c.account_id == account_id)
        )
        return result.rowcount > 0

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """A SAVEPOINT: create-and-link commits together or not at all (a conflict inside
        rolls back to here and leaves the surrounding transaction usable)."""
        async with self._conn.begin_nested():
            yield
