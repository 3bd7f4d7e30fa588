"""Engine construction (SQLite pragmas and write locking, PostgreSQL pooling) and what a
database that is down or busy looks like on each dialect (``database_unavailable``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

# How long a SQLite writer waits for the file's write lock (and for its turn in-process)
# before the request answers 503. Override per database with `?timeout=<seconds>` in the
# URL, the parameter SQLAlchemy's SQLite dialects already read.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# Execution options of read-only units of work (``Database.read``): ours tells the SQLite
# begin hook to take no write lock; PostgreSQL's makes asyncpg open BEGIN READ ONLY.
READ_ONLY: dict[str, Any] = {"lwa_read_only": True, "postgresql_readonly": True}
# asyncpg waits 60 s by default for a host that drops packets; a request should not.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_busy_timeout(url: str | URL) -> float:
    """The SQLite busy timeout in seconds: the URL's ``timeout`` query value, or 30."""
    raw = make_url(url).query.get("timeout")
    value = raw[-1] if isinstance(raw, tuple) else raw
    try:
        seconds = float(value) if value is not None else SQLITE_BUSY_TIMEOUT_SECONDS
    except ValueError:
        raise ValueError(f"the SQLite timeout must be a number of seconds, not {value!r}") from None
    if not seconds > 0:
        raise ValueError("the SQLite timeout must be positive")
    return seconds


def create_engine(
    url: str,
    *,
    null_pool: bool = False,
    pool_size: int = 20,
    max_overflow: int = 10,
    pool_recycle: int = 3600,
) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get their parent directory created.
    The pool figures apply to PostgreSQL (settings ``DB_POOL_SIZE``, ``DB_MAX_OVERFLOW``,
    ``DB_POOL_RECYCLE_SECONDS``)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in str(parsed.query)
        busy_timeout = sqlite_busy_timeout(parsed)
        if in_memory:
            # One shared connection, or every checkout would see a different empty database.
            kwargs["poolclass"] = StaticPool
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout}
            if null_pool:
                kwargs["poolclass"] = NullPool
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine, wal=not in_memory, busy_timeout_ms=round(busy_timeout * 1000))
        return engine
    if parsed.get_driver_name() == "asyncpg":
        kwargs["connect_args"] = {"timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        # No pre-ping: on asyncpg it costs BEGIN, a query and ROLLBACK before every
        # checkout. A connection the server dropped (restart, failover) fails its first
        # statement instead; SQLAlchemy then invalidates the whole pool (every older
        # connection is replaced at its next checkout), read-only units of work are retried
        # once from their start (``Database.run_read``), and a write answers 503 once.
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_recycle=pool_recycle)
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine, *, wal: bool, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A read-only unit of work reads a snapshot and takes no lock (WAL: readers never
        # wait for the writer).
        if connection.get_execution_options().get("lwa_read_only"):
            connection.exec_driver_sql("BEGIN")
            return
        # Take the write lock up front. A deferred transaction that reads and then writes
        # fails at once with "database is locked" when another writer got in between;
        # BEGIN IMMEDIATE waits (busy_timeout) instead, so concurrent writers queue up.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# ---- is the database down (503) or is this a bug (500)? ----------------------------------

# SQLite primary result codes that say "the file is busy or unusable right now", never
# "this SQL is wrong" (no such table, syntax error and constraint failures stay bugs or 4xx).
_SQLITE_UNAVAILABLE = {
    5,  # SQLITE_BUSY: "database is locked", another writer held it past busy_timeout
    6,  # SQLITE_LOCKED
    10,  # SQLITE_IOERR
    13,  # SQLITE_FULL
    14,  # SQLITE_CANTOPEN
}
# PostgreSQL SQLSTATEs: class 08 connection exception, class 53 insufficient resources
# (too many connections, out of memory or disk), shutting down / starting up (57P01-57P03),
# a lock timeout (55P03).
_POSTGRES_UNAVAILABLE_CLASSES = ("08", "53")
_POSTGRES_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "55P03"})


def database_unavailable(error: BaseException, *, connecting: bool = False) -> bool:
    """True when ``error`` means the database is down, unreachable or too busy: retryable,
    nobody's fault in the request (503). False for bugs and constraint violations.

    ``connecting``: the error was raised while a connection was being opened, where the
    drivers let plain socket errors through (``ConnectionRefusedError``, a connect
    timeout): a raw ``OSError`` then means "cannot reach the database".
    """
    if isinstance(error, sa_exc.TimeoutError):
        return True  # the pool had no connection to give within pool_timeout
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True  # the dialect recognised a dropped connection
        return _driver_error_unavailable(error.orig)
    if isinstance(error, OSError):  # includes TimeoutError and ConnectionRefusedError
        return connecting
    return False


def _driver_error_unavailable(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in _SQLITE_UNAVAILABLE  # extended codes keep the primary low
    sqlstate = getattr(orig, "sqlstate", None)  # SQLAlchemy's asyncpg adapter copies it
    if isinstance(sqlstate, str) and sqlstate:
        return (
            sqlstate.startswith(_POSTGRES_UNAVAILABLE_CLASSES)
            or sqlstate in _POSTGRES_UNAVAILABLE_STATES
        )
    return False
