"""Session checks are read-only (issue 11): they never wait behind a sign-in on SQLite,
write only when the idle expiry is due, and idle expiry is still enforced."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import SESSION_TOUCH_INTERVAL, AuditEvent
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import metadata, sessions
from lwa_accounts.web.app import create_app
from tests.e2e.amazon_harness import (
    amazon_sign_in,
    bearer,
    database_of,
    e2e_settings,
    mint,
    running,
)
from tests.perf.statements import counting
from tests.web.conftest import BASE_URL, START, api_register, api_sign_in, make_settings

IDLE_SECONDS = 600


async def _me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/api/v1/me", headers=bearer(token))).status_code


async def test_a_session_check_takes_no_write_lock_on_sqlite(
    tmp_path: Path, on_sqlite: None
) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client):
        token = (await amazon_sign_in(client, await mint(client))).json()["session"]["token"]
        with counting(database_of(app).engine) as seen:
            assert await _me(client, token) == 200
    assert seen.brackets == ["BEGIN"], seen.brackets  # deferred: no BEGIN IMMEDIATE


async def _signed_in(app: FastAPI, client: httpx.AsyncClient) -> tuple[Database, str]:
    token = (await amazon_sign_in(client, await mint(client))).json()["session"]["token"]
    return database_of(app), token


async def test_a_session_check_does_not_wait_behind_a_sign_in_in_this_process(
    tmp_path: Path,
) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client):
        db, token = await _signed_in(app, client)
        holding, release = asyncio.Event(), asyncio.Event()

        async def sign_in_holding_the_writer() -> int:
            # A sign-in's transaction: SQLite's write lock and this process's writer slot.
            async with db.transaction() as stores:
                await stores.audit.record(AuditEvent(kind="test.writing", at=START))
                holding.set()
                await release.wait()
            return 0

        writer = asyncio.create_task(sign_in_holding_the_writer())
        await holding.wait()
        try:
            async with asyncio.timeout(2):  # the busy timeout is 30 s: waiting would show
                assert await _me(client, token) == 200
            assert not writer.done()  # the write transaction was open all along
        finally:
            release.set()
            await writer


async def test_a_session_check_does_not_wait_for_another_process_holding_sqlite(
    tmp_path: Path,
    on_sqlite: None,
) -> None:
    settings = e2e_settings(tmp_path)
    async with running(settings) as (app, client):
        db, token = await _signed_in(app, client)
        other = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process's sign-in holds the lock
            other.execute("UPDATE accounts SET name = name")
            async with asyncio.timeout(2):
                assert await _me(client, token) == 200
            other.execute("ROLLBACK")
        finally:
            other.close()


@pytest.mark.postgres
async def test_a_read_only_unit_of_work_cannot_write_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    async with running(e2e_settings(tmp_path, database_url=postgres_url)) as (app, client):
        db, token = await _signed_in(app, client)
        async with db.read() as stores:
            resolved = await stores.sessions.resolve(token, touch=False)
        assert resolved is not None
        with pytest.raises(sa_exc.DBAPIError, match="read-only"):
            async with db.read() as stores:
                await stores.sessions.touch(resolved[0])


async def _last_seen(db: Database) -> list[datetime]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(sessions.c.last_seen_at))).scalars()
        return [t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in rows]


async def test_idle_expiry_is_enforced_although_last_seen_is_written_lazily(
    tmp_path: Path,
) -> None:
    clock = FixedClock(START)
    settings = make_settings(tmp_path, device_session_idle_seconds=IDLE_SECONDS)
    idle = timedelta(seconds=IDLE_SECONDS)
    app = create_app(settings, clock=clock)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url=BASE_URL
        ) as client,
    ):
        db = database_of(app)
        await api_register(client)
        token = await api_sign_in(client)  # a device session, last seen at START
        # Used again before a touch is due: answered, nothing written.
        clock.advance(SESSION_TOUCH_INTERVAL.total_seconds() - 1)
        assert await _me(client, token) == 200
        assert await _last_seen(db) == [START]
        # Idle for the whole limit since that use: refused, though the stored last-seen
        # is older than the last use (the expiry stored at the last write stands).
        clock.advance(IDLE_SECONDS)
        assert await _me(client, token) == 401
        # And exactly at the limit from the last write: refused too (never late).
        token = await api_sign_in(client)
        clock.advance(idle.total_seconds())
        assert await _me(client, token) == 401

        # A due touch is written and slides the expiry from this use.
        token = await api_sign_in(client)
        clock.advance(SESSION_TOUCH_INTERVAL.total_seconds())
        assert await _me(client, token) == 200
        touched_at = clock.now()
        clock.advance(IDLE_SECONDS - 1)
        assert await _me(client, token) == 200  # within the limit of the touched use
        clock.advance(IDLE_SECONDS)
        assert await _me(client, token) == 401
        assert touched_at < clock.now()


async def test_in_memory_sqlite_reads_queue_behind_writes(tmp_path: Path) -> None:
    # One shared connection (StaticPool): a read must not slip into a write transaction.
    settings = e2e_settings(tmp_path, database_url="sqlite+aiosqlite:///:memory:")
    db = Database.from_settings(settings)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        holding, release = asyncio.Event(), asyncio.Event()

        async def write() -> None:
            async with db.transaction() as stores:
                await stores.audit.record(AuditEvent(kind="test.writing", at=START))
                holding.set()
                await release.wait()

        async def read() -> int:
            async with db.read() as stores:
                return len(await stores.audit.list())

        writer = asyncio.create_task(write())
        await holding.wait()
        reader = asyncio.create_task(read())
        await asyncio.sleep(0.2)
        assert not reader.done()  # waits for the write transaction to end
        release.set()
        await writer
        assert await reader == 1  # and then sees its commit
    finally:
        await db.dispose()
