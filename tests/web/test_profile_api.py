"""``PATCH /api/v1/me`` and ``/api/v1/me/email-verification`` (issue 13 items 2 and 5), on
SQLite and PostgreSQL: every bad field named, unknown fields refused, nothing
half-written, the new address only once confirmed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwa_accounts.testing.mail import code_in, queued_mail
from tests.security.service import (
    Service,
    bearer,
    browser_sign_in,
    password_token,
    register,
    running,
    security_settings,
)


@pytest.fixture
async def site(tmp_path: Path, database_url: str | None) -> AsyncIterator[Service]:
    async with running(security_settings(tmp_path, database_url=database_url)) as service:
        yield service


async def ada(site: Service) -> tuple[httpx.AsyncClient, str]:
    client = await site.client()
    await register(client, "ada", "ada@example.com")
    return client, await password_token(client, "ada")


async def me(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/api/v1/me", headers=bearer(token))
    account: dict[str, Any] = response.json()["account"]
    return account


async def code_for(site: Service, address: str) -> str:
    mail = [m for m in await queued_mail(site.database, address) if m.kind == "verify_email"]
    return code_in(mail[-1])


async def test_name_and_postal_code(site: Service) -> None:
    client, token = await ada(site)
    response = await client.patch(
        "/api/v1/me",
        json={"name": "Countess Ada", "postal_code": "SW1A 1AA"},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email_change"] is None
    assert (body["account"]["name"], body["account"]["postal_code"]) == ("Countess Ada", "SW1A 1AA")
    assert (await me(client, token))["postal_code"] == "SW1A 1AA"
    removed = await client.patch("/api/v1/me", json={"postal_code": None}, headers=bearer(token))
    assert removed.json()["account"]["postal_code"] is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": ""}, {"name"}),
        ({"name": None}, {"name"}),
        ({"email": None}, {"email"}),
        (
            {"name": "x" * 101, "postal_code": "\u202e1234", "email": "nope"},
            {"name", "postal_code", "email"},
        ),
        ({"name": "Ada", "postal_code": "1" * 33}, {"postal_code"}),
    ],
)
async def test_bad_fields_are_named_and_nothing_is_written(
    site: Service, body: dict[str, Any], fields: set[str]
) -> None:
    client, token = await ada(site)
    before = await me(client, token)
    response = await client.patch("/api/v1/me", json=body, headers=bearer(token))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert set(problem["errors"]) == fields
    assert await me(client, token) == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Ada", "username": "root"},
        {"email_verified": True},
        {},
        {"name": 5},
        [],
        {"password": "tangerine-elephant-42"},
    ],
)
async def test_unknown_fields_and_odd_bodies_are_422(site: Service, body: Any) -> None:
    client, token = await ada(site)
    before = await me(client, token)
    response = await client.patch("/api/v1/me", json=body, headers=bearer(token))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await me(client, token) == before


async def test_a_cookie_cannot_patch(site: Service) -> None:
    """No CSRF token in the JSON API: a state change takes the bearer token only."""
    client, _ = await ada(site)
    await browser_sign_in(client, "ada")
    assert (await client.get("/api/v1/me")).status_code == 200  # the cookie reads...
    response = await client.patch("/api/v1/me", json={"name": "Mallory"})
    assert response.status_code == 401  # ...and changes nothing
    assert (await client.get("/api/v1/me")).json()["account"]["name"] == "Ada"


async def test_a_new_address_through_the_code(site: Service) -> None:
    client, token = await ada(site)
    asked = await client.patch(
        "/api/v1/me", json={"email": "ada@new.example"}, headers=bearer(token)
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["email_change"]["email"] == "ada@new.example"
    assert asked.json()["account"]["email"] == "ada@example.com"  # kept until confirmed
    kinds = [m.kind for m in await queued_mail(site.database, "ada@example.com")]
    assert kinds == ["verify_email", "notice_email_changed"]
    wrong = await client.post(
        "/api/v1/me/email-verification", json={"code": "000000"}, headers=bearer(token)
    )
    if wrong.status_code == 400:  # else, one time in a million, the right code
        assert wrong.json()["code"] == "wrong_email_code"
        assert wrong.json()["attempts_left"] == 4
    right = await client.post(
        "/api/v1/me/email-verification",
        json={"code": await code_for(site, "ada@new.example")},
        headers=bearer(token),
    )
    assert right.status_code == 200, right.text
    account = right.json()["account"]
    assert (account["email"], account["email_verified"]) == ("ada@new.example", True)
    assert await me(client, token) == account


async def test_resend_and_its_refusals(site: Service) -> None:
    client, token = await ada(site)
    sent = await client.post("/api/v1/me/email-verification/resend", headers=bearer(token))
    assert sent.status_code == 202, sent.text
    assert sent.json()["email"] == "ada@example.com"
    verified = await client.post(
        "/api/v1/me/email-verification",
        json={"code": await code_for(site, "ada@example.com")},
        headers=bearer(token),
    )
    assert verified.json()["account"]["email_verified"] is True
    again = await client.post("/api/v1/me/email-verification/resend", headers=bearer(token))
    assert (again.status_code, again.json()["code"]) == (409, "email_already_verified")
    none = await client.post(
        "/api/v1/me/email-verification", json={"code": "123456"}, headers=bearer(token)
    )
    assert (none.status_code, none.json()["code"]) == (410, "email_link_expired")


async def test_an_address_confirmed_by_another_account_is_409(site: Service) -> None:
    client, token = await ada(site)
    await client.post(
        "/api/v1/me/email-verification",
        json={"code": await code_for(site, "ada@example.com")},
        headers=bearer(token),
    )
    await register(client, "bob", "bob@example.com")
    bob = await password_token(client, "bob")
    taken = await client.patch("/api/v1/me", json={"email": "ADA@example.com"}, headers=bearer(bob))
    assert (taken.status_code, taken.json()["code"]) == (409, "email_taken")
