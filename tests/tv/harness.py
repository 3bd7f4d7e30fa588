"""A test harness for the TV flows: the app over ASGI with its own emulated Amazon.

The emulator runs as a separate ASGI app (its own clock, reached at http://amazon.test),
injected as the app's Amazon transport and counted, so tests can prove how often the
server asked Amazon. Our server runs on a FixedClock; ``advance`` moves both clocks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from lwa_accounts.clock import FixedClock
from lwa_accounts.emulator.app import create_app as create_emulator
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.settings import Settings
from lwa_accounts.web.app import create_app

BASE_URL = "http://testserver"
AMAZON_URL = "http://amazon.test"
PASSWORD = "tangerine-elephant-42"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def device_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": tmp_path,
        "secret_key": "test-secret-key-0123456789abcdef",
        "public_url": BASE_URL,
        "lwa_api_url": AMAZON_URL,
        "argon2_memory_kib": 64,
        "argon2_time_cost": 1,
        "device_poll_interval_seconds": 5,
    }
    values.update(overrides)
    return Settings(**values)


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts requests per path before handing them to the wrapped transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[request.url.path.lower()] += 1
        return await self.inner.handle_async_request(request)


@dataclass
class DeviceEnv:
    app: FastAPI
    tv: httpx.AsyncClient
    phone: httpx.AsyncClient
    amazon: httpx.AsyncClient
    amazon_transport: CountingTransport
    clock: FixedClock
    settings: Settings

    async def advance(self, seconds: float) -> None:
        """Move our clock and the emulated Amazon's together."""
        self.clock.advance(seconds)
        response = await self.amazon.post("/_emulator/clock", json={"advance_seconds": seconds})
        response.raise_for_status()

    @property
    def amazon_token_polls(self) -> int:
        return self.amazon_transport.calls["/auth/o2/token"]

    async def add_customer(
        self, name: str, email: str, *, postal_code: str | None = "98052"
    ) -> str:
        body: dict[str, Any] = {"name": name, "email": email, "password": "amazon-pass"}
        if postal_code:
            body["postal_code"] = postal_code
        response = await self.amazon.post("/_emulator/customers", json=body)
        assert response.status_code == 201, response.text
        user_id: str = response.json()["user_id"]
        return user_id

    async def decide_at_amazon(self, user_code: str, user_id: str | None) -> None:
        if user_id is None:
            response = await self.amazon.post(f"/_emulator/codes/{user_code}/deny")
        else:
            response = await self.amazon.post(
                f"/_emulator/codes/{user_code}/approve", json={"user_id": user_id}
            )
        assert response.status_code == 200, response.text

    async def local_account(
        self, username: str, email: str | None, *, password: str = PASSWORD
    ) -> dict[str, Any]:
        response = await self.phone.post(
            "/api/v1/accounts",
            json={
                "username": username,
                "email": email,
                "name": username.title(),
                "password": password,
            },
        )
        assert response.status_code == 201, response.text
        account: dict[str, Any] = response.json()["account"]
        return account

    async def csrf(self, path: str = "/signin") -> str:
        page = await self.phone.get(path)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    async def phone_form(self, path: str, data: dict[str, str]) -> httpx.Response:
        token = await self.csrf()
        return await self.phone.post(path, data={**data, "csrf_token": token})

    async def phone_sign_in(self, username: str, password: str = PASSWORD) -> None:
        response = await self.phone_form(
            "/signin", {"username": username, "password": password, "next": "/account"}
        )
        assert response.status_code == 303, response.text


@asynccontextmanager
async def device_env(settings: Settings, **emulator: Any) -> AsyncIterator[DeviceEnv]:
    clock = FixedClock(START)
    amazon_app = create_emulator(EmulatorConfig(**emulator))
    counting = CountingTransport(httpx.ASGITransport(app=amazon_app))
    app = create_app(settings, clock=clock, amazon_transport=counting)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as tv,
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as phone,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=amazon_app), base_url=AMAZON_URL
            ) as amazon,
        ):
            yield DeviceEnv(
                app=app,
                tv=tv,
                phone=phone,
                amazon=amazon,
                amazon_transport=counting,
                clock=clock,
                settings=settings,
            )
