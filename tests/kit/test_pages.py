"""The HTML side with the kit: /signin with a legacy password, /account for that user,
and parallel first Amazon sign-ins that must create exactly one row in the foreign table."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID
from tests.kit.conftest import fetch

_CSRF_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_.-]+)"')


async def test_signin_page_with_a_legacy_password(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    page = await kit_client.get("/signin")
    found = _CSRF_RE.search(page.text)
    assert found
    wrong = await kit_client.post(
        "/signin",
        data={"csrf_token": found.group(1), "username": "Ada@example.com", "password": "x"},
    )
    assert wrong.status_code == 401, wrong.text
    assert "incorrect" in wrong.text.lower() or "wrong" in wrong.text.lower()

    page = await kit_client.get("/signin")
    found = _CSRF_RE.search(page.text)
    assert found
    response = await kit_client.post(
        "/signin",
        data={"csrf_token": found.group(1), "username": "Ada@example.com", "password": "s3cr3t"},
    )
    assert response.status_code == 303, response.text
    account = await kit_client.get("/account")
    assert account.status_code == 200
    assert "Ada L." in account.text
    rows = await fetch(legacy_db, "SELECT pw FROM legacy_users WHERE login = 'AdaL'")
    assert rows[0]["pw"].startswith("$argon2id$")


@pytest.mark.slow
async def test_parallel_first_amazon_sign_ins_create_one_row(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    grace = "amzn1.account.GRACEHOPPER0000000000000DEMO"
    tokens = []
    for _ in range(12):
        minted = await kit_client.post(
            "/_amazon/_emulator/tokens",
            json={"user_id": grace, "client_id": EMULATED_DEVICE_CLIENT_ID, "scope": "profile"},
        )
        tokens.append(minted.json()["access_token"])
    responses = await asyncio.gather(
        *(kit_client.post("/api/v1/sessions/amazon", json={"access_token": t}) for t in tokens)
    )
    assert [r.status_code for r in responses] == [201] * len(tokens)
    assert len({r.json()["account"]["id"] for r in responses}) == 1
    assert sum(r.json()["created"] for r in responses) == 1
    rows = await fetch(
        legacy_db, "SELECT count(*) AS n FROM legacy_users WHERE mail = :m", m="grace@example.com"
    )
    assert rows[0]["n"] == 1
    links = await fetch(legacy_db, "SELECT count(*) AS n FROM amazon_identities")
    assert links[0]["n"] == 1
