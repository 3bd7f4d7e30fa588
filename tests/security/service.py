"""The whole service over ASGI for attack tests: several clients (attacker, victim, phones,
a TV) with their own cookie jars on one app, its embedded emulated Amazon at /_amazon, and a
fixed clock so nothing depends on how fast a loaded machine runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from lwa_accounts.clock import FixedClock
from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID, Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import QueuedMail, queued_mail
from lwa_accounts.web.app import create_app
from lwa_accounts.web.services import Services
from tests.e2e.amazon_harness import BASE_URL, CONTROL, PASSWORD, e2e_settings
from tests.e2e.amazon_harness import confirm_email as confirm_in_app

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CSRF_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_.-]+)"')
ATTACKER_PASSWORD = "mallory-chose-this-42"

# Limits far above what a race sends: these tests prove single use and row locks, not the
# throttle (tests/security/test_sec08_throttle_races.py does that).
RACE_LIMITS: dict[str, Any] = {
    "password_limit_per_account_ip": "1000/15minutes",
    "password_limit_per_account": "1000/15minutes",
    "password_limit_per_ip": "1000/15minutes",
    "registration_limit_per_ip": "1000/hour",
    "user_code_limit_per_ip": "1000/10minutes",
    "user_code_limit_per_code": "1000/10minutes",
    "flow_max_password_attempts": 50,
}


def security_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return e2e_settings(tmp_path, **overrides)


@dataclass
class Service:
    app: FastAPI
    transport: httpx.ASGITransport
    clock: FixedClock
    _stack: AsyncExitStack = field(repr=False)

    async def client(self) -> httpx.AsyncClient:
        """A new browser or device: its own cookie jar, closed with the service."""
        return await self._stack.enter_async_context(
            httpx.AsyncClient(transport=self.transport, base_url=BASE_URL)
        )

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def database(self) -> Database:
        return self.services.database

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.database.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def count(self, sql_from: str, **params: Any) -> int:
        query = f"SELECT count(*) FROM {sql_from}"  # noqa: S608 - the tests' own SQL
        return int(await self.scalar(query, **params) or 0)

    async def confirm_email(self, address: str) -> None:
        """The address's owner opens the last verification mail sent to it and confirms
        (issue 13: only a confirmed address is ever a link step's target)."""
        await confirm_in_app(self.app, address)

    async def mail_to(self, address: str, kind: str = "verify_email") -> list[QueuedMail]:
        return [m for m in await queued_mail(self.database, address) if m.kind == kind]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Service]:
    clock = FixedClock(START)
    app = create_app(settings, clock=clock)
    async with AsyncExitStack() as stack:
        manager = await stack.enter_async_context(LifespanManager(app))
        transport = httpx.ASGITransport(app=manager.app)
        yield Service(app=app, transport=transport, clock=clock, _stack=stack)


# ---- Amazon (the emulator's test-control API) ------------------------------------------------


async def add_amazon_customer(client: httpx.AsyncClient, name: str, email: str) -> str:
    """A new Amazon account: Amazon does not verify that its owner owns ``email``."""
    response = await client.post(
        f"{CONTROL}/customers", json={"name": name, "email": email, "password": "amazon-pass"}
    )
    assert response.status_code == 201, response.text
    user_id: str = response.json()["user_id"]
    return user_id


async def set_amazon_email(client: httpx.AsyncClient, user_id: str, email: str) -> None:
    response = await client.patch(f"{CONTROL}/customers/{user_id}", json={"email": email})
    assert response.status_code == 200, response.text


async def mint(
    client: httpx.AsyncClient, user_id: str, *, client_id: str = EMULATED_DEVICE_CLIENT_ID
) -> str:
    response = await client.post(
        f"{CONTROL}/tokens",
        json={"user_id": user_id, "client_id": client_id, "scope": "profile postal_code"},
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]
    return token


async def amazon_sign_in(client: httpx.AsyncClient, user_id: str) -> httpx.Response:
    """A device posting a fresh Amazon access token of ``user_id``."""
    token = await mint(client, user_id)
    return await client.post(
        "/api/v1/sessions/amazon", json={"access_token": token, "device_name": "TV"}
    )


# ---- local accounts ----------------------------------------------------------------------------


async def register(
    client: httpx.AsyncClient, username: str, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/accounts",
        json={"username": username, "email": email, "name": username.title(), "password": password},
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


async def password_token(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    response = await client.post(
        "/api/v1/sessions", json={"username": username, "password": password}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["session"]["token"]
    return token


async def browser_sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> None:
    """Sign in on the /signin page: the client's cookie jar then holds a browser session."""
    page = await client.get("/signin")
    found = CSRF_RE.search(page.text)
    assert found, "no CSRF token on /signin"
    response = await client.post(
        "/signin",
        data={
            "username": username,
            "password": password,
            "next": "/account",
            "csrf_token": found.group(1),
        },
    )
    assert response.status_code == 303, response.text


async def form_post(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    """A form post with the CSRF token of this browser (taken from /signin)."""
    page = await client.get("/signin")
    found = CSRF_RE.search(page.text)
    assert found, "no CSRF token on /signin"
    return await client.post(path, data={**data, "csrf_token": found.group(1)})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers=bearer(token))
