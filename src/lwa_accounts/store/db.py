"""The database: one engine, migrations, and transactions that hand out bound stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lwa_accounts.clock import SystemClock
from lwa_accounts.interfaces import (
    AccountStore,
    AuditLog,
    Clock,
    DeviceStore,
    IdentityStore,
    PendingFlowStore,
    SessionStore,
)
from lwa_accounts.sealing import Sealer
from lwa_accounts.settings import Settings
from lwa_accounts.store import migrate
from lwa_accounts.store.accounts import SqlAccountStore
from lwa_accounts.store.audit import SqlAuditLog
from lwa_accounts.store.devices import SqlDeviceStore
from lwa_accounts.store.engine import SQLITE_BUSY_TIMEOUT_MS, create_engine
from lwa_accounts.store.identities import SqlIdentityStore
from lwa_accounts.store.pending_flows import SqlPendingFlowStore
from lwa_accounts.store.sessions import SqlSessionStore


@dataclass(frozen=True)
class Stores:
    """The stores of one transaction. They never commit: ``Database.transaction`` does."""

    accounts: AccountStore
    sessions: SessionStore
    audit: AuditLog
    identities: IdentityStore  # Amazon user_id <-> account (issue 5)
    pending_flows: PendingFlowStore  # pending Amazon link / registration steps (issue 5)
    devices: DeviceStore  # device grants, hand-offs, Amazon code pairs (issue 6)


class Database:
    def __init__(self, url: str, *, settings: Settings, clock: Clock | None = None) -> None:
        self.url = url
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.engine: AsyncEngine = create_engine(url)
        self.dialect_name: str = self.engine.dialect.name
        # SQLite allows one writer, and every transaction here is a writer (BEGIN IMMEDIATE).
        # Queueing in-process is fairer and faster than SQLite's sleep-and-retry busy handler;
        # busy_timeout still covers other processes.
        self._sqlite_writer = asyncio.Lock() if self.dialect_name == "sqlite" else None

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Database:
        return cls(settings.effective_database_url, settings=settings, clock=clock)

    async def upgrade(self) -> None:
        """Bring the schema to the latest migration (Alembic runs in a worker thread)."""
        await asyncio.to_thread(migrate.upgrade, self.url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Stores]:
        """One transaction: commits on normal exit, rolls back if the block raises.

        Do not open a second transaction inside one (on SQLite it would wait for itself).
        """
        if self._sqlite_writer is None:
            async with self.engine.begin() as connection:
                yield self.stores(connection)
            return
        async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
            await self._sqlite_writer.acquire()
        try:
            async with self.engine.begin() as connection:
                yield self.stores(connection)
        finally:
            self._sqlite_writer.release()

    def stores(self, connection: AsyncConnection) -> Stores:
        """Stores bound to ``connection``, which must already be in a transaction."""
        return Stores(
            accounts=SqlAccountStore(connection, self.clock),
            sessions=SqlSessionStore(connection, self.clock, self.settings),
            audit=SqlAuditLog(connection),
            identities=SqlIdentityStore(connection),
            pending_flows=SqlPendingFlowStore(connection),
            devices=SqlDeviceStore(connection, Sealer(self.settings)),
        )

    async def dispose(self) -> None:
        await self.engine.dispose()
