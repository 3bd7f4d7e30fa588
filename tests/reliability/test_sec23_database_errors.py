"""security.md item 23, piece by piece: which database errors are an outage (503) and
which are bugs (500), the once-per-outage log, the HTTP safety net and the CLI.

Every error here is a real one, produced by a real driver: a SQLite file locked by another
connection, a PostgreSQL port nobody listens on, an exhausted pool, bad SQL.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Request
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from lwa_accounts.core.models import AuditEvent
from lwa_accounts.errors import DatabaseUnavailable
from lwa_accounts.outages import OutageLog
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.store.engine import database_unavailable
from lwa_accounts.web.app import create_app
from lwa_accounts.web.services import get_services
from tests.processes import free_port, run_cli
from tests.reliability.harness import PASSWORD, problem_of_503, server_env


@contextmanager
def locked(path: Path) -> Iterator[None]:
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.close()


def sqlite_url(path: Path, timeout: float = 0.2) -> str:
    return f"sqlite+aiosqlite:///{path.as_posix()}?timeout={timeout}"


async def raised(url: str, sql: str) -> BaseException:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    except Exception as error:
        return error
    finally:
        await engine.dispose()
    raise AssertionError("no error")


# ---- classification -------------------------------------------------------------------------


async def test_sec23_a_locked_sqlite_file_is_unavailable_bad_sql_is_not(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    sqlite3.connect(path).close()
    with locked(path):
        busy = await raised(sqlite_url(path), "BEGIN IMMEDIATE")
    assert isinstance(busy, sa_exc.OperationalError)
    assert database_unavailable(busy)
    for sql in ("SELECT * FROM no_such_table", "SELEC 1"):
        bug = await raised(sqlite_url(path), sql)
        assert isinstance(bug, sa_exc.OperationalError)  # same class, different cause
        assert not database_unavailable(bug), sql


async def test_sec23_postgres_nobody_listening_is_unavailable(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    database = Database(url, settings=Settings(env="test", data_dir=tmp_path))
    try:
        with pytest.raises(DatabaseUnavailable) as refused:
            async with database.transaction():
                pass
        assert isinstance(refused.value.__cause__, ConnectionRefusedError)
        assert refused.value.status == 503
        assert refused.value.retry_after
        # A socket error is an outage only while connecting, not from inside a block.
        assert database_unavailable(ConnectionRefusedError(), connecting=True)
        assert not database_unavailable(ConnectionRefusedError())
    finally:
        await database.dispose()


async def test_sec23_an_exhausted_pool_is_unavailable_and_bugs_pass_through(
    tmp_path: Path,
) -> None:
    settings = Settings(env="test", data_dir=tmp_path)
    database = Database(sqlite_url(tmp_path / "pool.db"), settings=settings)
    await database.upgrade()
    await database.engine.dispose()
    database.engine = create_async_engine(
        database.url, pool_size=1, max_overflow=0, pool_timeout=0.1
    )
    try:
        async with database.engine.connect():
            with pytest.raises(DatabaseUnavailable) as exhausted:
                async with database.transaction():
                    pass
            assert isinstance(exhausted.value.__cause__, sa_exc.TimeoutError)
    finally:
        await database.dispose()
    # With connections to spare, a bug inside the block stays itself (a 500 at the edge).
    database = Database(sqlite_url(tmp_path / "pool.db"), settings=settings)
    try:
        with pytest.raises(sa_exc.StatementError, match="naive"):
            async with database.transaction() as stores:
                await stores.audit.record(AuditEvent(kind="x", at=datetime(2026, 1, 1)))
        assert not database.outages.down
    finally:
        await database.dispose()


# ---- one warning per outage -----------------------------------------------------------------


def test_sec23_outage_log_warns_once_reminds_rarely_and_notes_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    log = OutageLog(
        "database", logging.getLogger("test.outage"), repeat_seconds=60, clock=lambda: now[0]
    )
    caplog.set_level(logging.INFO, logger="test.outage")
    failure = sa_exc.OperationalError(
        "INSERT INTO accounts VALUES (?)",
        ("secret@example.com",),
        sqlite3.OperationalError("database is locked"),
    )
    for _ in range(500):
        log.failed(failure)
        now[0] += 0.05  # 25 s of refusals
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "database unavailable (OperationalError: database is locked)" in caplog.text
    assert "secret@example.com" not in caplog.text
    assert "INSERT" not in caplog.text
    now[0] += 40
    log.failed(failure)  # 65 s into the outage: one reminder with the count
    assert "still unavailable after 65 s, 501 requests refused" in caplog.records[-1].getMessage()
    log.succeeded()
    log.succeeded()
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 2 + [logging.INFO]
    assert "available again after 65.0 s, 501 requests refused" in caplog.text
    log.failed(failure)  # a new outage warns again
    assert len(caplog.records) == 4


def test_sec23_outage_log_without_successes_ends_an_outage_after_a_quiet_spell(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = OutageLog(
        "Amazon", logging.getLogger("test.quiet"), quiet_seconds=30, clock=lambda: now[0]
    )
    caplog.set_level(logging.INFO, logger="test.quiet")
    for step in (1, 10, 10, 10, 10):  # failures never 30 s apart: one outage
        now[0] += step
        log.failed(OSError("timed out"))
    assert len(caplog.records) == 1
    now[0] += 31
    log.failed(OSError("timed out"))  # after a quiet spell: a new outage, a new warning
    assert [r.getMessage() for r in caplog.records] == [
        "Amazon unavailable (OSError: timed out): answering 503 until it is back"
    ] * 2


# ---- the HTTP safety net and the CLI -----------------------------------------------------------


async def test_sec23_raw_engine_errors_at_the_edge_503_for_a_lock_500_for_a_bug(
    tmp_path: Path,
) -> None:
    path = tmp_path / "edge.db"
    settings = Settings(
        env="test", data_dir=tmp_path, database_url=sqlite_url(path), secret_key="k" * 32
    )
    app = create_app(settings)

    @app.get("/api/v1/_raw/{sql}")
    async def raw(request: Request, sql: str) -> dict[str, str]:
        statement = {"select": "SELECT 1", "bug": "SELECT * FROM no_such_table"}[sql]
        async with get_services(request).database.engine.connect() as connection:
            await connection.execute(text(statement))
        return {}

    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            with locked(path):
                busy = await client.get("/api/v1/_raw/select")
            assert problem_of_503(busy) is None, busy.text
            bug = await client.get("/api/v1/_raw/bug")
            assert bug.status_code == 500
            assert bug.json()["code"] == "internal_error"


def test_sec23_cli_with_the_database_locked_says_so_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    env = server_env(tmp_path / "var", database_url=sqlite_url(path, timeout=0.5))
    created = run_cli(
        "accounts",
        "create",
        "ada",
        "--name",
        "Ada",
        "--password-stdin",
        env=env,
        input=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    with locked(path):
        refused = run_cli(
            "accounts",
            "create",
            "bob",
            "--name",
            "Bob",
            "--password-stdin",
            env=env,
            input=PASSWORD + "\n",
        )
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert "database is briefly unavailable" in refused.stderr
