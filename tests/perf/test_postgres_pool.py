"""PostgreSQL pooling without a ping per checkout (issue 11): pool figures from settings,
and a session check that meets a connection the server dropped is retried once."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.conftest import POSTGRES_HOST, POSTGRES_PORT
from tests.e2e.amazon_harness import (
    amazon_sign_in,
    bearer,
    database_of,
    e2e_settings,
    mint,
    running,
)

pytestmark = pytest.mark.postgres


async def _terminate_backends(database: str) -> int:
    admin = await asyncpg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", database="postgres"
    )
    try:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
    finally:
        await admin.close()
    return len(rows)


async def test_pool_figures_come_from_the_settings_and_nothing_pings(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = e2e_settings(
        tmp_path,
        database_url=postgres_url,
        db_pool_size=7,
        db_max_overflow=3,
        db_pool_recycle_seconds=120,
    )
    async with running(settings) as (app, _):
        pool = database_of(app).engine.pool
        assert pool.size() == 7  # type: ignore[attr-defined]
        assert pool._max_overflow == 3  # type: ignore[attr-defined]
        assert pool._recycle == 120
        assert not pool._pre_ping


async def test_a_session_check_on_a_dropped_connection_is_retried_once(
    tmp_path: Path, postgres_url: str
) -> None:
    async with running(e2e_settings(tmp_path, database_url=postgres_url)) as (app, client):
        token = (await amazon_sign_in(client, await mint(client))).json()["session"]["token"]
        assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
        database = database_of(app).engine.url.database or ""
        # The server drops every pooled connection (a restart, a failover, an idle cut).
        assert await _terminate_backends(database) >= 1
        response = await client.get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 200, response.text
        # The pool was invalidated: the next write gets a fresh connection, no 503.
        second = await amazon_sign_in(client, await mint(client))
        assert second.status_code == 201, second.text
