"""Shared fixtures: real PostgreSQL and Redis when reachable.

Tests that need a service skip when it is unreachable, unless LWA_ACCOUNTS_REQUIRE_SERVICES=1
(CI), where an unreachable service fails the test instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

POSTGRES_HOST = os.environ.get("LWA_TEST_POSTGRES_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("LWA_TEST_POSTGRES_PORT", "5432"))
REDIS_URL = os.environ.get("LWA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("LWA_ACCOUNTS_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, when services are required, fail) if the service is unreachable."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and LWA_ACCOUNTS_REQUIRE_SERVICES=1")
    pytest.skip(message)


async def _admin(sql: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", database="postgres"
    )
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


def _new_database_name() -> str:
    return f"lwa_test_{uuid.uuid4().hex[:12]}"


def _database_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = _new_database_name()
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# LWA_TEST_DATABASE=postgres runs the whole suite with PostgreSQL as the default database:
# every test gets a fresh database through LWA_ACCOUNTS_DATABASE_URL, which every Settings()
# (and every `lwa-accounts` subprocess) reads when a test does not name a database itself.
DEFAULT_DATABASE = os.environ.get("LWA_TEST_DATABASE", "sqlite")


def _in_thread(sql: str) -> None:
    # A thread of its own: the test may already run an event loop in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _admin(sql)).result()


@pytest.fixture
def on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """For a test about SQLite itself (its file, its locks, its seeding): the default
    database stays SQLite even under LWA_TEST_DATABASE=postgres."""
    monkeypatch.delenv("LWA_ACCOUNTS_DATABASE_URL", raising=False)


@pytest.fixture(autouse=True)
def _default_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if DEFAULT_DATABASE != "postgres":
        yield
        return
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = _new_database_name()
    _in_thread(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("LWA_ACCOUNTS_DATABASE_URL", _database_url(name))
    try:
        yield
    finally:
        _in_thread(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    """Redis on loopback, database 0; tests use their own key prefixes."""
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL
