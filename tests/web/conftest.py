"""Web fixtures: the whole app over ASGI (lifespan included), on SQLite or PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from lwa_accounts.clock import FixedClock
from lwa_accounts.settings import Settings
from lwa_accounts.testing import offline_settings
from lwa_accounts.web.app import create_app

PASSWORD = "tangerine-elephant-42"
BASE_URL = "http://testserver"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
_CSRF_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_.-]+)"')


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "password_limit_per_account_ip": "3/15minutes",
        "password_limit_per_ip": "50/15minutes",
    }
    return offline_settings(tmp_path, **{**values, **overrides})


@asynccontextmanager
async def serve_app(
    settings: Settings, *, clock: FixedClock | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, clock=clock)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if request.param == "sqlite":
        return None  # the default: a SQLite file in DATA_DIR
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """SQLite only: for page and bad-input tests."""
    async with serve_app(settings) as http:
        yield http


@pytest.fixture
async def any_db_client(
    tmp_path: Path, database_url: str | None
) -> AsyncIterator[httpx.AsyncClient]:
    """The API suite runs on SQLite and on PostgreSQL."""
    async with serve_app(make_settings(tmp_path, database_url=database_url)) as http:
        yield http


def csrf_from(html: str) -> str:
    found = _CSRF_RE.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def api_register(
    client: httpx.AsyncClient,
    username: str = "ada",
    email: str | None = "ada@example.com",
    password: str = PASSWORD,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/accounts",
        json={"username": username, "email": email, "name": "Ada Lovelace", "password": password},
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


async def api_sign_in(
    client: httpx.AsyncClient, username: str = "ada", password: str = PASSWORD
) -> str:
    response = await client.post(
        "/api/v1/sessions",
        json={"username": username, "password": password, "device_name": "Test TV"},
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["session"]["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def page_sign_in(
    client: httpx.AsyncClient,
    username: str = "ada",
    password: str = PASSWORD,
    next_url: str | None = None,
) -> httpx.Response:
    page = await client.get("/signin")
    form = {"csrf_token": csrf_from(page.text), "username": username, "password": password}
    if next_url is not None:
        form["next"] = next_url
    return await client.post("/signin", data=form)
