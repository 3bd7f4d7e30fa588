"""Shared by the recovery page, API and attack tests: accounts with a verified address,
asking for a reset as a browser and as an API client, and the message that arrives."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from lwa_accounts.testing.mail import QueuedMail
from tests.e2e.amazon_harness import database_of, register_password_account
from tests.flows.recovery_helpers import last_reset_mail, reset_mails
from tests.web.conftest import csrf_from

NEW_PASSWORD = "marmalade-otter-88"

__all__ = [
    "NEW_PASSWORD",
    "ask_api",
    "ask_page",
    "mark_verified",
    "newest_reset",
    "reset_count",
    "verified_account",
]


async def mark_verified(app: FastAPI, account_id: str, verified: bool = True) -> None:
    async with database_of(app).transaction() as stores:
        await stores.accounts.update(account_id, email_verified=verified)


async def verified_account(
    app: FastAPI, client: httpx.AsyncClient, username: str = "ada", email: str = "ada@example.com"
) -> dict[str, Any]:
    """A password account (``PASSWORD``) whose address is verified."""
    account = await register_password_account(client, username, email)
    await mark_verified(app, account["id"])
    return account


async def ask_page(client: httpx.AsyncClient, login: str) -> httpx.Response:
    """The browser's way: the /forgot form, posted with its CSRF token."""
    page = await client.get("/forgot")
    assert page.status_code == 200, page.text
    return await client.post("/forgot", data={"csrf_token": csrf_from(page.text), "login": login})


async def ask_api(client: httpx.AsyncClient, login: str) -> httpx.Response:
    return await client.post("/api/v1/password-resets", json={"login": login})


async def newest_reset(app: FastAPI, to: str = "ada@example.com") -> QueuedMail:
    return await last_reset_mail(database_of(app), to)


async def reset_count(app: FastAPI, to: str = "ada@example.com") -> int:
    return len(await reset_mails(database_of(app), to))
