"""SQL statements per operation, pinned (issue 11): a regression fails here.

Each count is exact. When a change lowers one, lower the pin; a change that raises one
needs a reason in its commit. Both dialects send the same statements (transaction
brackets aside: see ``statements.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.amazon_harness import (
    ADA,
    PASSWORD,
    amazon_sign_in,
    bearer,
    database_of,
    e2e_settings,
    mint,
    register_password_account,
    running,
)
from tests.perf.statements import Statements, counting

Service = tuple[FastAPI, httpx.AsyncClient]

RETURNING_AMAZON_SIGN_IN = 4
# 9, then 11 (issue 13): the new account's verification mail, its proof and its outbox
# row, queued in the same transaction (a new account has no earlier proof to spend).
FIRST_AMAZON_SIGN_IN = 11
ME = 2
PASSWORD_SIGN_IN = 5
SIGN_OUT = 3


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def service(tmp_path: Path, database_url: str | None) -> AsyncIterator[Service]:
    async with running(e2e_settings(tmp_path, database_url=database_url)) as pair:
        yield pair


def audit_inserts(seen: Statements) -> int:
    return len(seen.matching("INSERT INTO audit_events"))


async def test_returning_amazon_sign_in(service: Service) -> None:
    app, client = service
    assert (await amazon_sign_in(client, await mint(client))).status_code == 201
    token = await mint(client)
    with counting(database_of(app).engine) as seen:
        response = await amazon_sign_in(client, token)
    assert response.status_code == 201, response.text
    assert response.json()["created"] is False
    assert seen.count == RETURNING_AMAZON_SIGN_IN, str(seen)
    assert audit_inserts(seen) == 1, str(seen)
    # A link exists: the e-mail is never looked up.
    assert not seen.matching("email_normalized ="), str(seen)


async def test_first_amazon_sign_in(service: Service) -> None:
    app, client = service
    token = await mint(client, ADA)
    with counting(database_of(app).engine) as seen:
        response = await amazon_sign_in(client, token)
    assert response.status_code == 201, response.text
    assert response.json()["created"] is True
    assert seen.count == FIRST_AMAZON_SIGN_IN, str(seen)


async def test_me(service: Service) -> None:
    app, client = service
    session = (await amazon_sign_in(client, await mint(client))).json()["session"]["token"]
    with counting(database_of(app).engine) as seen:
        response = await client.get("/api/v1/me", headers=bearer(session))
    assert response.status_code == 200, response.text
    assert seen.count == ME, str(seen)
    assert not seen.matching("UPDATE sessions"), str(seen)


async def test_password_sign_in(service: Service) -> None:
    app, client = service
    await register_password_account(client)
    with counting(database_of(app).engine) as seen:
        response = await client.post(
            "/api/v1/sessions", json={"username": "ada", "password": PASSWORD}
        )
    assert response.status_code == 201, response.text
    assert seen.count == PASSWORD_SIGN_IN, str(seen)
    # SQLite: the look-up and the session are write transactions; rendering only reads.
    assert seen.brackets.count("BEGIN IMMEDIATE") in (0, 2), seen.brackets


async def test_sign_out(service: Service) -> None:
    app, client = service
    session = (await amazon_sign_in(client, await mint(client))).json()["session"]["token"]
    with counting(database_of(app).engine) as seen:
        response = await client.delete("/api/v1/sessions/current", headers=bearer(session))
    assert response.status_code == 204, response.text
    assert seen.count == SIGN_OUT, str(seen)
