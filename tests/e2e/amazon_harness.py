"""The whole service with its embedded emulated Amazon, over ASGI (no sockets).

The app mounts the emulator at /_amazon and reaches it in-process, exactly as `make run`
does; tests drive Amazon's test-control API (/_amazon/_emulator/...) to mint tokens, change
customers and inject faults.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID, Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing import offline_settings
from lwa_accounts.testing.mail import QueuedMail, link_in, queued_mail
from lwa_accounts.web.app import create_app
from lwa_accounts.web.services import Services

BASE_URL = "http://accounts.test"
PASSWORD = "tangerine-elephant-42"
ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"
GRACE = "amzn1.account.GRACEHOPPER0000000000000DEMO"
CONTROL = "/_amazon/_emulator"


def e2e_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "public_url": BASE_URL,
        "password_limit_per_account_ip": "3/15minutes",
        "password_limit_per_ip": "100/15minutes",
        "lwa_deadline_seconds": 2.0,
    }
    return offline_settings(tmp_path, **{**values, **overrides})


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield app, client


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def database_of(app: FastAPI) -> Database:
    return services_of(app).database


async def mint(
    client: httpx.AsyncClient,
    user_id: str = ADA,
    *,
    client_id: str = EMULATED_DEVICE_CLIENT_ID,
    scope: str = "profile postal_code",
) -> str:
    response = await client.post(
        f"{CONTROL}/tokens", json={"user_id": user_id, "client_id": client_id, "scope": scope}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]
    return token


async def amazon_sign_in(
    client: httpx.AsyncClient, token: str, device_name: str | None = "Living-room TV"
) -> httpx.Response:
    body: dict[str, Any] = {"access_token": token}
    if device_name is not None:
        body["device_name"] = device_name
    return await client.post("/api/v1/sessions/amazon", json=body)


async def register_password_account(
    client: httpx.AsyncClient, username: str = "ada", email: str = "ada@example.com"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/accounts",
        json={"username": username, "email": email, "name": "Ada L.", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


async def password_token(client: httpx.AsyncClient, username: str = "ada") -> str:
    response = await client.post(
        "/api/v1/sessions", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["session"]["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def count(app: FastAPI, table: str) -> int:
    async with database_of(app).engine.connect() as conn:
        value = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()  # noqa: S608
    return int(value or 0)


_HIDDEN_RE = re.compile(r'name="(csrf_token|token)" value="([^"]*)"')


async def confirm_email(app: FastAPI, address: str = "ada@example.com") -> None:
    """Confirm ``address`` as its owner would (issue 13): open the link of the last
    verification mail sent to it, in a signed-out browser of its own, and press Confirm.
    Only a confirmed address is ever the target of an Amazon sign-in's link step."""
    mail = [m for m in await queued_mail(database_of(app), address) if m.kind == "verify_email"]
    assert mail, f"no verification mail to {address}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as browser:
        await confirm_by_link(browser, mail[-1])


async def confirm_by_link(browser: httpx.AsyncClient, mail: QueuedMail) -> None:
    """Open the mail's /verify-email link with ``browser`` and press Confirm."""
    parts = urlsplit(link_in(mail, "/verify-email?token="))
    page = await browser.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200, page.text
    fields = {name: html.unescape(value) for name, value in _HIDDEN_RE.findall(page.text)}
    done = await browser.post("/verify-email", data=fields)
    assert done.status_code == 303, done.text
