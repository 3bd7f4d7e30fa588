"""The database: one engine, migrations, and transactions that hand out bound stores.

A database that is down, unreachable or busy past its timeout surfaces from
``transaction()`` (and ``ping()``) as ``errors.DatabaseUnavailable`` (503 with
``Retry-After`` at the HTTP edge, an error line in the CLI), logged once per outage through
an ``OutageLog``; the driver's own error stays attached as ``__cause__``. Bugs (bad SQL,
constraint violations the stores do not turn into errors) pass through unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from lwa_accounts.clock import SystemClock
from lwa_accounts.errors import DatabaseUnavailable
from lwa_accounts.interfaces import (
    AccountStore,
    AuditLog,
    Clock,
    DeviceStore,
    EmailCodeStore,
    IdentityStore,
    Outbox,
    PendingFlowStore,
    SessionStore,
)
from lwa_accounts.outages import OutageLog
from lwa_accounts.sealing import Sealer
from lwa_accounts.settings import Settings
from lwa_accounts.store import migrate
from lwa_accounts.store.accounts import SqlAccountStore
from lwa_accounts.store.audit import SqlAuditLog
from lwa_accounts.store.devices import SqlDeviceStore
from lwa_accounts.store.email_codes import SqlEmailCodeStore
from lwa_accounts.store.engine import (
    READ_ONLY,
    create_engine,
    database_unavailable,
    sqlite_busy_timeout,
)
from lwa_accounts.store.identities import SqlIdentityStore
from lwa_accounts.store.outbox import SqlOutbox
from lwa_accounts.store.pending_flows import SqlPendingFlowStore
from lwa_accounts.store.sessions import SqlSessionStore

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class SqlStores:
    """The stores of one transaction (``interfaces.Stores``). They never commit:
    ``Database.transaction`` does."""

    accounts: AccountStore
    sessions: SessionStore
    audit: AuditLog
    identities: IdentityStore  # Amazon user_id <-> account (issue 5)
    pending_flows: PendingFlowStore  # pending Amazon link / registration steps (issue 5)
    devices: DeviceStore  # device grants, hand-offs, Amazon code pairs (issue 6)
    outbox: Outbox  # e-mail queued for the delivery worker (issue 13)
    email_codes: EmailCodeStore  # one-time e-mail links and codes (issue 13)


class Database:
    def __init__(self, url: str, *, settings: Settings, clock: Clock | None = None) -> None:
        self.url = url
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.engine: AsyncEngine = create_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_recycle=settings.db_pool_recycle_seconds,
        )
        # The same pool, for read-only units of work: a deferred BEGIN on SQLite (no write
        # lock: in WAL mode readers never wait for the writer), BEGIN READ ONLY on PostgreSQL.
        self.reader: AsyncEngine = self.engine.execution_options(**READ_ONLY)
        self.dialect_name: str = self.engine.dialect.name
        # SQLite allows one writer, and every write transaction here takes the write lock
        # up front (BEGIN IMMEDIATE). Queueing in-process is fairer and faster than SQLite's
        # sleep-and-retry busy handler; busy_timeout still covers other processes.
        self._sqlite_writer = asyncio.Lock() if self.dialect_name == "sqlite" else None
        self.sqlite_busy_timeout = sqlite_busy_timeout(url) if self._sqlite_writer else 0.0
        # In-memory SQLite shares ONE connection (StaticPool): a read must not interleave
        # with a write transaction on it, so there reads queue like writes.
        self._reads_queue = isinstance(self.engine.pool, StaticPool)
        # One warning per outage of this process, not a traceback per refused request.
        self.outages = OutageLog("database", logger)
        self.sealer = Sealer(settings)  # derives its keys once, not per transaction
        # Called after each commit that queued mail (web/app.py wakes the delivery worker).
        self.on_mail_committed: Callable[[], None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Database:
        return cls(settings.effective_database_url, settings=settings, clock=clock)

    async def upgrade(self) -> None:
        """Bring the schema to the latest migration (Alembic runs in a worker thread)."""
        try:
            await asyncio.to_thread(migrate.upgrade, self.url)
        except Exception as error:
            # Alembic also reads files: only socket failures count as "cannot connect".
            reaching = isinstance(error, ConnectionError | TimeoutError)
            unavailable = self.unavailable(error, connecting=reaching)
            if unavailable is None:
                raise
            raise unavailable from error

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlStores]:
        """One transaction: commits on normal exit, rolls back if the block raises.

        Raises ``DatabaseUnavailable`` when the database is down, unreachable or busy past
        its timeout, at connect, inside the block or at commit; nothing of the block is
        committed then, except in one case no client can rule out: the connection died
        after the server committed but before it said so (the caller saw a 503 for a
        change that happened; a retry meets it, e.g. as ``username_taken``).

        Do not open a second transaction inside one (on SQLite it would wait for itself).
        """
        async with self._unit(self._writer_slot(), self.engine) as stores:
            yield stores
        # Committed: a delivery worker waiting in this process may send at once.
        queued = isinstance(stores.outbox, SqlOutbox) and stores.outbox.queued > 0
        if queued and self.on_mail_committed is not None:
            self.on_mail_committed()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on a bare connection, for statements no store holds (the
        delivery worker's claims); the writer slot and outage handling of ``transaction()``."""
        async with self._connection(self._writer_slot(), self.engine) as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlStores]:
        """A read-only transaction (session checks): never waits for this process's SQLite
        writer or SQLite's write lock, and PostgreSQL refuses any write in it. Errors as
        ``transaction()``. A write the reads call for (a due session touch) goes in a
        ``transaction()`` of its own afterwards."""
        slot = self._writer_slot() if self._reads_queue else nullcontext()
        async with self._unit(slot, self.reader) as stores:
            yield stores

    @asynccontextmanager
    async def _unit(
        self, slot: AbstractAsyncContextManager[None], engine: AsyncEngine
    ) -> AsyncIterator[SqlStores]:
        """The one unit-of-work sequence under ``transaction()`` and ``read()``: take the
        slot, begin on ``engine``, hand out the stores; an outage becomes
        ``DatabaseUnavailable`` (at connect, inside the block or at commit)."""
        async with self._connection(slot, engine) as connection:
            yield self.stores(connection)

    @asynccontextmanager
    async def _connection(
        self, slot: AbstractAsyncContextManager[None], engine: AsyncEngine
    ) -> AsyncIterator[AsyncConnection]:
        connecting = True
        try:
            async with slot, engine.begin() as connection:
                connecting = False
                yield connection
        except Exception as error:
            unavailable = self.unavailable(error, connecting=connecting)
            if unavailable is None:
                raise
            raise unavailable from error
        self.outages.succeeded()

    async def run_read(self, work: Callable[[SqlStores], Awaitable[T]]) -> T:
        """``work`` in a read-only unit of work, run once more from its start on a fresh
        connection when the first turned out dead (the server restarted since it was
        pooled): reads are safe to repeat, and the pool is no longer pinged per checkout."""
        try:
            async with self.read() as stores:
                return await work(stores)
        except DatabaseUnavailable as error:
            cause = error.__cause__
            if not (isinstance(cause, DBAPIError) and cause.connection_invalidated):
                raise
        async with self.read() as stores:
            return await work(stores)

    async def ping(self) -> None:
        """``SELECT 1``; raises ``DatabaseUnavailable`` like ``transaction()`` (health checks)."""
        connecting = True
        try:
            async with self.engine.connect() as connection:
                connecting = False
                await connection.execute(text("SELECT 1"))
        except Exception as error:
            unavailable = self.unavailable(error, connecting=connecting)
            if unavailable is None:
                raise
            raise unavailable from error
        self.outages.succeeded()

    def unavailable(
        self, error: BaseException, *, connecting: bool = False
    ) -> DatabaseUnavailable | None:
        """The ``DatabaseUnavailable`` to raise for ``error`` (counted in the outage log),
        or None when ``error`` is not the database being down or busy (a bug: let it be)."""
        if not database_unavailable(error, connecting=connecting):
            return None
        self.outages.failed(error)
        return DatabaseUnavailable()

    @asynccontextmanager
    async def _writer_slot(self) -> AsyncIterator[None]:
        """SQLite: this process's turn to write, waited for at most the busy timeout."""
        if self._sqlite_writer is None:
            yield
            return
        try:
            async with asyncio.timeout(self.sqlite_busy_timeout):
                await self._sqlite_writer.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"no turn to write within {self.sqlite_busy_timeout:g} s "
                "(another transaction of this process holds SQLite's write lock)"
            ) from None
        try:
            yield
        finally:
            self._sqlite_writer.release()

    def stores(self, connection: AsyncConnection) -> SqlStores:
        """Stores bound to ``connection``, which must already be in a transaction."""
        return SqlStores(
            accounts=SqlAccountStore(connection, self.clock),
            sessions=SqlSessionStore(connection, self.clock, self.settings),
            audit=SqlAuditLog(connection),
            identities=SqlIdentityStore(connection),
            pending_flows=SqlPendingFlowStore(connection),
            devices=SqlDeviceStore(connection, self.sealer),
            outbox=SqlOutbox(connection, self.sealer),
            email_codes=SqlEmailCodeStore(connection),
        )

    async def dispose(self) -> None:
        await self.engine.dispose()
