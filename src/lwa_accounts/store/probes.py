"""Cheap reads for readiness and metrics: the schema's revision, the active-session count,
and the connection pool's numbers.

Errors are translated like every other database access (``Database.unavailable``): a
database that is down raises ``DatabaseUnavailable`` and is counted in its outage log.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from lwa_accounts.store import migrate
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import sessions


@cache
def head_revision() -> str | None:
    """The newest migration this code ships (read from the package once per process)."""
    return migrate.head()


async def current_revision(database: Database) -> str | None:
    """The database's Alembic revision (one indexed row; None before the first upgrade)."""
    connecting = True
    try:
        async with database.engine.connect() as connection:
            connecting = False
            table = await connection.run_sync(
                lambda sync: sync.dialect.has_table(sync, "alembic_version")
            )
            if not table:
                return None
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            row = result.first()
    except Exception as error:
        unavailable = database.unavailable(error, connecting=connecting)
        if unavailable is None:
            raise
        raise unavailable from error
    database.outages.succeeded()
    return None if row is None else str(row[0])


async def count_active_sessions(database: Database, now: datetime) -> int:
    """Sessions neither revoked nor past either expiry. A range over the
    ``idle_expires_at`` index (migration 0004): the cost grows with live sessions, not with
    the table, and the caller caches it (``web/metrics.py``)."""
    query = (
        select(func.count())
        .select_from(sessions)
        .where(
            sessions.c.idle_expires_at > now,
            sessions.c.absolute_expires_at > now,
            sessions.c.revoked_at.is_(None),
        )
    )
    connecting = True
    try:
        async with database.engine.connect() as connection:
            connecting = False
            count = (await connection.execute(query)).scalar_one()
    except Exception as error:
        unavailable = database.unavailable(error, connecting=connecting)
        if unavailable is None:
            raise
        raise unavailable from error
    return int(count)


PoolNumbers = tuple[int, int, int]  # in use, overflow, size
_watched: weakref.WeakSet[Any] = weakref.WeakSet()  # engines with listeners (a reused database)


def pool_numbers(database: Database) -> PoolNumbers | None:
    """Checked out, overflow and size of a queue pool (None for SQLite's static or null
    pools, which have no such numbers)."""
    pool: Any = database.engine.sync_engine.pool
    try:
        return int(pool.checkedout()), int(pool.overflow()), int(pool.size())
    except AttributeError:
        return None


def watch_pool(database: Database, on_change: Callable[[PoolNumbers], None]) -> None:
    """Call ``on_change`` with the pool's numbers after each checkout and checkin (a few
    integer reads; the metric it sets is then right in every worker, not only the one a
    scrape reaches)."""
    engine = database.engine.sync_engine

    def checked_out(*_args: object) -> None:
        numbers = pool_numbers(database)
        if numbers is not None:
            on_change(numbers)

    def checked_in(*_args: object) -> None:
        # The pool fires "checkin" before it takes the connection back: not in use now.
        numbers = pool_numbers(database)
        if numbers is not None:
            in_use, overflow, size = numbers
            on_change((max(0, in_use - 1), overflow, size))

    if pool_numbers(database) is None or engine in _watched:
        return
    _watched.add(engine)
    sa_event.listen(engine, "checkout", checked_out)
    sa_event.listen(engine, "checkin", checked_in)
