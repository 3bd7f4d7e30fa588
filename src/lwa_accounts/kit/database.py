"""``store.db.Database`` whose accounts live in the company's users table."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.interfaces import AccountStore, Clock, IdentityStore, SessionStore
from lwa_accounts.kit import migrate
from lwa_accounts.kit.accounts import ForeignAccountStore
from lwa_accounts.kit.identities import ForeignAccountIdentityStore
from lwa_accounts.kit.mapping import UsersTableMapping
from lwa_accounts.kit.sessions import ForeignAccountSessionStore
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database, SqlStores


class KitDatabase(Database):
    """Every store as usual, except accounts (the foreign table) and the session lookup
    that used to join our ``accounts`` table. Their table must be in this same database:
    a sign-in that creates a user and its Amazon link is one transaction."""

    def __init__(
        self,
        url: str,
        *,
        settings: Settings,
        mapping: UsersTableMapping,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(url, settings=settings, clock=clock)
        self.mapping = mapping

    async def upgrade(self) -> None:
        """The product's migrations, then drop our foreign keys to ``accounts``."""
        await migrate.upgrade(self.url)

    def stores(self, connection: AsyncConnection) -> SqlStores:
        # Annotated so mypy proves the kit's stores satisfy the interfaces.
        accounts: AccountStore = ForeignAccountStore(connection, self.clock, self.mapping)
        sessions: SessionStore = ForeignAccountSessionStore(
            connection, self.clock, self.settings, accounts
        )
        identities: IdentityStore = ForeignAccountIdentityStore(connection, accounts)
        # replace(): stores added to SqlStores later keep their default implementation.
        return replace(
            super().stores(connection),
            accounts=accounts,
            sessions=sessions,
            identities=identities,
        )
