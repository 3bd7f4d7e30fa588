"""Database plumbing: SQLite pragmas and locking, transactions, engine set-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from lwa_accounts.clock import SystemClock
from lwa_accounts.core.models import NewAccount
from lwa_accounts.errors import DatabaseUnavailable
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from tests.store.conftest import sqlite_url


async def test_from_settings_uses_a_sqlite_file_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LWA_ACCOUNTS_DATABASE_URL", raising=False)  # the default, even in CI
    data_dir = tmp_path / "nested" / "data"
    db = Database.from_settings(Settings(env="test", data_dir=data_dir))
    try:
        assert db.dialect_name == "sqlite"
        assert isinstance(db.clock, SystemClock)
        await db.upgrade()
        assert (data_dir / "lwa-accounts.db").is_file()
    finally:
        await db.dispose()


async def test_sqlite_pragmas(tmp_path: Path, settings: Settings) -> None:
    db = Database(sqlite_url(tmp_path), settings=settings)
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30_000
    finally:
        await db.dispose()


async def test_many_concurrent_write_transactions_all_succeed(db: Database) -> None:
    """No "database is locked" on SQLite: writers queue on BEGIN IMMEDIATE + busy_timeout."""

    async def register(i: int) -> None:
        async with db.transaction() as stores:
            account = await stores.accounts.create(
                NewAccount(f"user{i}", f"user{i}@example.com", f"User {i}", None)
            )
            # Read, yield to the other tasks, then write again inside the same transaction.
            await asyncio.sleep(0)
            await stores.sessions.create(
                account.id, "device", device_name=None, user_agent=None, ip=None
            )

    await asyncio.gather(*(register(i) for i in range(25)))
    async with db.transaction() as stores:
        assert len(await stores.accounts.list()) == 25


async def test_transaction_commits_on_exit_and_is_visible_elsewhere(db: Database) -> None:
    async with db.transaction() as stores:
        created = await stores.accounts.create(NewAccount("dave", None, "Dave", None))
    other = Database(db.url, settings=db.settings)
    try:
        async with other.transaction() as stores:
            assert await stores.accounts.get(created.id) == created
    finally:
        await other.dispose()


async def test_naive_datetimes_are_refused(db: Database) -> None:
    from datetime import datetime

    from lwa_accounts.core.models import AuditEvent

    with pytest.raises(Exception, match="naive"):
        async with db.transaction() as stores:
            await stores.audit.record(AuditEvent(kind="x", at=datetime(2026, 1, 1)))


async def test_nested_sqlite_transaction_fails_instead_of_hanging(
    tmp_path: Path, settings: Settings
) -> None:
    # `?timeout=` in the URL is the SQLite busy timeout, also the in-process wait.
    db = Database(sqlite_url(tmp_path) + "?timeout=0.1", settings=settings)
    try:
        await db.upgrade()
        async with db.transaction():
            with pytest.raises(DatabaseUnavailable) as raised:
                async with db.transaction():
                    pass
            assert isinstance(raised.value.__cause__, TimeoutError)
        # The writer slot was released: the next transaction goes through.
        async with db.transaction() as stores:
            assert list(await stores.accounts.list()) == []
    finally:
        await db.dispose()


async def test_two_engines_on_one_sqlite_file_wait_for_each_other(
    tmp_path: Path, settings: Settings
) -> None:
    """Like two server processes: no in-process lock between them, only busy_timeout."""
    first = Database(sqlite_url(tmp_path), settings=settings)
    second = Database(sqlite_url(tmp_path), settings=settings)
    try:
        await first.upgrade()

        async def register(db: Database, i: int) -> None:
            async with db.transaction() as stores:
                await stores.accounts.create(NewAccount(f"user{i}", None, "U", None))
                await asyncio.sleep(0.001)  # hold the write lock across a yield

        await asyncio.gather(
            *(register(first if i % 2 else second, i) for i in range(20)),
        )
        async with first.transaction() as stores:
            assert len(await stores.accounts.list()) == 20
    finally:
        await first.dispose()
        await second.dispose()


def test_alembic_ini_points_at_the_packaged_migrations() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from lwa_accounts.store import migrate

    ini = Path(__file__).resolve().parents[2] / "alembic.ini"
    scripts = ScriptDirectory.from_config(Config(str(ini)))
    assert Path(scripts.dir).resolve() == migrate.MIGRATIONS_DIR.resolve()
    assert scripts.get_current_head() == migrate.head()
