"""Shared fixtures: real PostgreSQL and Redis when reachable.

Tests that need a service skip when it is unreachable, unless LWA_ACCOUNTS_REQUIRE_SERVICES=1
(CI), where an unreachable service fails the test instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

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


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    import asyncpg

    name = f"lwa_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", database="postgres"
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        admin = await asyncpg.connect(
            host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", database="postgres"
        )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
def redis_url() -> str:
    """Redis on loopback, database 0; tests use their own key prefixes."""
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL
