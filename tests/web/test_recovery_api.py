"""POST /api/v1/password-resets and /password-resets/confirm, on SQLite and PostgreSQL:
the answers, the problems naming their fields, and nothing written by a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lwa_accounts.testing.mail import code_in
from lwa_accounts.web.problems import PROBLEM_JSON
from tests.e2e.amazon_harness import PASSWORD, e2e_settings, password_token, running
from tests.flows.recovery_helpers import token_in
from tests.web.conftest import bearer
from tests.web.recovery_helpers import NEW_PASSWORD, ask_api, newest_reset, verified_account

Service = tuple[FastAPI, httpx.AsyncClient]
CONFIRM = "/api/v1/password-resets/confirm"


@pytest.fixture
async def service(tmp_path: Path, database_url: str | None) -> AsyncIterator[Service]:
    async with running(e2e_settings(tmp_path, database_url=database_url)) as pair:
        yield pair


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def _signs_in(client: httpx.AsyncClient, password: str) -> bool:
    response = await client.post("/api/v1/sessions", json={"username": "ada", "password": password})
    return response.status_code == 201


async def test_asking_is_202_and_the_link_resets_once(service: Service) -> None:
    app, client = service
    await verified_account(app, client)
    tv = await password_token(client)
    asked = await ask_api(client, "ada")
    assert asked.status_code == 202
    assert asked.json()["status"] == "accepted"
    token = token_in(await newest_reset(app))

    done = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert (done.status_code, done.content) == (204, b"")
    assert (await client.get("/api/v1/me", headers=bearer(tv))).status_code == 401
    assert not await _signs_in(client, PASSWORD)
    assert await _signs_in(client, NEW_PASSWORD)
    again = await client.post(CONFIRM, json={"token": token, "new_password": "another-phrase-9"})
    _problem(again, 410, "email_link_used")


async def test_the_code_resets(service: Service) -> None:
    app, client = service
    await verified_account(app, client)
    await ask_api(client, "ada@example.com")
    code = code_in(await newest_reset(app))
    wrong = "000000" if code != "000000" else "111111"
    body = {"login": "ada", "new_password": NEW_PASSWORD}
    refused = _problem(
        await client.post(CONFIRM, json=body | {"code": wrong}), 400, "wrong_email_code"
    )
    assert list(refused["errors"]) == ["code"]
    assert "attempts_left" not in refused
    done = await client.post(CONFIRM, json=body | {"code": code})
    assert done.status_code == 204
    assert await _signs_in(client, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"new_password": NEW_PASSWORD}, ["token"]),
        ({"token": "t", "login": "ada", "new_password": NEW_PASSWORD}, ["login"]),
        (
            {"token": "t", "code": "1", "login": "a", "new_password": NEW_PASSWORD},
            ["login", "code"],
        ),
        ({"login": "ada", "new_password": NEW_PASSWORD}, ["code"]),
        ({"code": "123456", "new_password": NEW_PASSWORD}, ["login"]),
        ({"token": "t"}, ["new_password"]),
        ({"token": "t", "new_password": NEW_PASSWORD, "amazon_link": "maybe"}, ["amazon_link"]),
        ({"token": "t", "new_password": NEW_PASSWORD, "extra": 1}, ["extra"]),
        ({"token": "", "new_password": NEW_PASSWORD}, ["token"]),
        ({"token": "t" * 513, "new_password": NEW_PASSWORD}, ["token"]),
    ],
)
async def test_bad_confirm_bodies_are_422_naming_the_fields(
    service: Service, body: dict[str, Any], fields: list[str]
) -> None:
    _, client = service
    problem = _problem(await client.post(CONFIRM, json=body), 422, "validation_failed")
    assert sorted(problem["errors"]) == sorted(fields)


@pytest.mark.parametrize("password", ["short", "password123"])
async def test_a_weak_password_is_422_and_writes_nothing(service: Service, password: str) -> None:
    app, client = service
    await verified_account(app, client)
    await ask_api(client, "ada")
    token = token_in(await newest_reset(app))
    refused = await client.post(CONFIRM, json={"token": token, "new_password": password})
    assert list(_problem(refused, 422, "validation_failed")["errors"]) == ["new_password"]
    assert await _signs_in(client, PASSWORD)
    done = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204  # the link was not spent by the refusal


@pytest.mark.parametrize(
    "body",
    [{}, {"login": ""}, {"login": "x" * 300}, {"login": 5}, {"login": "ada", "other": 1}],
)
async def test_bad_asks_are_422_naming_the_field(service: Service, body: dict[str, Any]) -> None:
    _, client = service
    response = await client.post("/api/v1/password-resets", json=body)
    problem = _problem(response, 422, "validation_failed")
    assert set(problem["errors"]) <= {"login", "other"}


async def test_an_altered_token_is_400_invalid(service: Service) -> None:
    app, client = service
    await verified_account(app, client)
    await ask_api(client, "ada")
    token = token_in(await newest_reset(app))
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused = await client.post(CONFIRM, json={"token": altered, "new_password": NEW_PASSWORD})
    _problem(refused, 400, "email_link_invalid")
    assert await _signs_in(client, PASSWORD)
