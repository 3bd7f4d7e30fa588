"""Migrations match the schema, and go down and up again (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from lwa_accounts.store import migrate
from lwa_accounts.store.engine import create_engine
from lwa_accounts.store.schema import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _run(url: str, fn: Any) -> Any:
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


async def test_upgrade_matches_schema_and_downgrade_removes_everything(database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url)
    assert await asyncio.to_thread(migrate.current, database_url) == migrate.head()
    assert await _run(database_url, _diff) == []
    assert {"accounts", "sessions", "audit_events"} <= await _run(database_url, _tables)

    await asyncio.to_thread(migrate.downgrade, database_url, "base")
    assert await asyncio.to_thread(migrate.current, database_url) is None
    assert await _run(database_url, _tables) <= {"alembic_version"}

    # And back up again: downgrade really undid everything.
    await asyncio.to_thread(migrate.upgrade, database_url)
    assert await _run(database_url, _diff) == []


def test_first_revision_id_is_stable() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    base = scripts.get_base()
    assert base == "0001_accounts"
    revision = scripts.get_revision(base)
    assert revision is not None
    assert revision.down_revision is None


async def test_concurrent_upgrades_in_one_process_are_serialised(database_url: str) -> None:
    await asyncio.gather(
        asyncio.to_thread(migrate.upgrade, database_url),
        asyncio.to_thread(migrate.upgrade, database_url),
    )
    assert await asyncio.to_thread(migrate.current, database_url) == migrate.head()


@pytest.mark.slow
async def test_two_processes_upgrading_a_fresh_database_both_succeed(database_url: str) -> None:
    # Two servers starting at once against an empty database.
    code = "import sys; from lwa_accounts.store import migrate; migrate.upgrade(sys.argv[1])"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, database_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    assert await asyncio.to_thread(migrate.current, database_url) == migrate.head()
    assert await _run(database_url, _diff) == []
