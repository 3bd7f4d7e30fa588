"""Store fixtures: every contract test runs on SQLite (a file in tmp_path) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account, NewAccount
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{(tmp_path / 'store.db').as_posix()}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env="test", data_dir=tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
async def db(database_url: str, settings: Settings, clock: FixedClock) -> AsyncIterator[Database]:
    database = Database(database_url, settings=settings, clock=clock)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


async def make_account(
    db: Database, username: str = "alice", email: str | None = "Alice@Example.com"
) -> Account:
    async with db.transaction() as stores:
        return await stores.accounts.create(
            NewAccount(username=username, email=email, name="Alice", password_hash="$argon2id$x")
        )
