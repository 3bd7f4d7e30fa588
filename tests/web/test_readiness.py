"""/health (no I/O) and /ready (database, migrations at head, Redis) against real failures:
a throwaway PostgreSQL cluster killed mid-test, a private redis-server killed, a database
migrated back one revision. Never the shared services."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwa_accounts.store import migrate
from tests.reliability.throwaway import private_redis, throwaway_postgres
from tests.web.conftest import make_settings, serve_app


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "5"
    body: dict[str, Any] = response.json()
    assert body["code"] == "not_ready"
    return body


async def test_ready_names_every_check_when_all_pass(tmp_path: Path) -> None:
    async with serve_app(make_settings(tmp_path)) as client:
        ready = await client.get("/ready")
        health = await client.get("/health")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


async def test_ready_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with serve_app(settings) as client:
        assert (await client.get("/ready")).status_code == 200
        await asyncio.to_thread(migrate.downgrade, settings.effective_database_url, "0003_devices")
        body = problem(await client.get("/ready"))
        assert body["failing"] == ["migrations"]
        assert body["checks"]["database"] == "ok"
        assert "0003_devices" in body["checks"]["migrations"]
        assert f"code wants {migrate.head()}" in body["detail"]
        assert (await client.get("/health")).status_code == 200  # alive, just not ready
        await asyncio.to_thread(migrate.upgrade, settings.effective_database_url)
        assert (await client.get("/ready")).status_code == 200


@pytest.mark.slow
async def test_ready_follows_a_real_postgres_outage(tmp_path: Path) -> None:
    with throwaway_postgres() as cluster:
        async with serve_app(make_settings(tmp_path, database_url=cluster.url)) as client:
            assert (await client.get("/ready")).status_code == 200
            await asyncio.to_thread(cluster.stop)
            body = problem(await client.get("/ready"))
            assert body["failing"] == ["database"]
            assert body["checks"] == {"database": "unavailable", "migrations": "skipped"}
            assert (await client.get("/health")).status_code == 200  # no I/O: still up
            await asyncio.to_thread(cluster.start)
            for _ in range(50):
                if (await client.get("/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("/ready did not recover after PostgreSQL came back")


async def test_ready_checks_redis_only_when_configured(tmp_path: Path) -> None:
    with private_redis() as redis:
        settings = make_settings(tmp_path, redis_url=redis.url)
        async with serve_app(settings) as client:
            ready = await client.get("/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["redis"] == "ok"
            redis.kill()
            body = problem(await client.get("/ready"))
            assert body["failing"] == ["redis"]
            assert body["checks"]["database"] == "ok"
            assert (await client.get("/health")).status_code == 200
            redis.start()
            assert (await client.get("/ready")).json()["checks"]["redis"] == "ok"
