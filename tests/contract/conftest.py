"""The store contract suite: every test here runs against every implementation of the
store Protocols (``interfaces.py``): the SQL stores on SQLite and on PostgreSQL, and the
integration kit over a company's own users table (``kit/``) on both. A test that needs
an implementation's internals says so with ``sql_only`` (the SQL schema's own columns);
everything else is the contract the flows rely on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwa_accounts.clock import FixedClock
from lwa_accounts.kit.database import KitDatabase
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from tests.kit.conftest import MAPPING, create_legacy_table
from tests.store.conftest import START, sqlite_url

IMPLEMENTATIONS = [
    "sql-sqlite",
    pytest.param("sql-postgres", marks=pytest.mark.postgres),
    "kit-sqlite",
    pytest.param("kit-postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name.startswith("kit") and request.node.get_closest_marker("sql_only"):
        pytest.skip("tests the SQL schema's own accounts table")
    return name


@pytest.fixture
def database_url(implementation: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if implementation.endswith("sqlite"):
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
async def db(
    implementation: str, database_url: str, settings: Settings, clock: FixedClock
) -> AsyncIterator[Database]:
    database: Database
    if implementation.startswith("kit"):
        await create_legacy_table(database_url, users=())
        database = KitDatabase(database_url, settings=settings, mapping=MAPPING, clock=clock)
    else:
        database = Database(database_url, settings=settings, clock=clock)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()
