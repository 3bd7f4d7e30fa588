"""security.md item 14c: who an e-mail address belongs to, attacked.

- A stolen session cannot move the account's address: a new address needs a sign-in
  within 5 minutes or the password (guesses at it share the sign-in throttle), the old
  address is told, and nothing moves until the new mailbox confirms.
- A link or code for another account gives a signed-in attacker nothing.
- Accounts racing to confirm one address: exactly one gets it (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lwa_accounts.testing.mail import code_in, link_in
from tests.security.races import PARALLEL, database_url, describe, statuses
from tests.security.service import (
    ATTACKER_PASSWORD,
    RACE_LIMITS,
    Service,
    bearer,
    browser_sign_in,
    form_post,
    password_token,
    register,
    running,
    security_settings,
)

__all__ = ["database_url"]  # the race fixture's database parameter
LATER = 301  # past recent_auth_seconds


async def _email_of(service: Service, username: str) -> tuple[str | None, bool]:
    email = await service.scalar("SELECT email FROM accounts WHERE username = :u", u=username)
    verified = await service.scalar(
        "SELECT email_verified FROM accounts WHERE username = :u", u=username
    )
    return email, bool(verified)


# ---- a stolen session -----------------------------------------------------------------------


async def test_sec14c_a_stolen_token_cannot_change_the_email(service: Service) -> None:
    ada = await service.client()
    await register(ada, "ada", "ada@example.com")
    await service.confirm_email("ada@example.com")
    stolen = await password_token(ada, "ada")
    browser = await service.client()
    await browser_sign_in(browser, "ada")
    service.clock.advance(LATER)
    mallory = await service.client()
    # A stolen browser session on the page: refused without the password.
    page = await form_post(browser, "/account/email", {"email": "mallory@evil.example"})
    assert page.status_code == 403

    refused = await mallory.patch(
        "/api/v1/me", json={"email": "mallory@evil.example"}, headers=bearer(stolen)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "reauthentication_required")
    # Guessing the password through it shares the sign-in throttle (3 per account and IP).
    guesses = await asyncio.gather(
        *(
            mallory.patch(
                "/api/v1/me",
                json={"email": "mallory@evil.example", "password": f"guess-{n}-password"},
                headers=bearer(stolen),
            )
            for n in range(10)
        )
    )
    assert statuses(guesses) == {401: 3, 429: 7}, describe(guesses)
    assert await service.mail_to("mallory@evil.example") == []
    assert await _email_of(service, "ada") == ("ada@example.com", True)


async def test_sec14c_a_fresh_session_still_moves_nothing_without_the_new_mailbox(
    service: Service,
) -> None:
    """Even within 5 minutes of a sign-in (a session stolen right away), asking is all it
    can do: the owner's address is told, and stays until the new one confirms."""
    ada = await service.client()
    await register(ada, "ada", "ada@example.com")
    await service.confirm_email("ada@example.com")
    stolen = await password_token(ada, "ada")
    asked = await ada.patch(
        "/api/v1/me", json={"email": "mallory@evil.example"}, headers=bearer(stolen)
    )
    assert asked.status_code == 200, asked.text
    [notice] = await service.mail_to("ada@example.com", "notice_email_changed")
    assert "m•••@evil.example" in notice.text
    assert "/not-me?token=" in notice.text
    assert await _email_of(service, "ada") == ("ada@example.com", True)
    # The owner cancels from the account page; the attacker's mail is then worthless.
    browser = await service.client()
    await browser_sign_in(browser, "ada")
    assert (await form_post(browser, "/account/email/cancel", {})).status_code == 303
    [mail] = await service.mail_to("mallory@evil.example")
    confirm = await (await service.client()).get(_path(link_in(mail, "/verify-email?token=")))
    assert confirm.status_code == 410
    wrong = await ada.post(
        "/api/v1/me/email-verification", json={"code": code_in(mail)}, headers=bearer(stolen)
    )
    assert wrong.status_code == 410
    assert await _email_of(service, "ada") == ("ada@example.com", True)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# ---- another account's link or code --------------------------------------------------------


async def test_sec14c_another_accounts_link_or_code_gives_a_signed_in_attacker_nothing(
    service: Service,
) -> None:
    ada, mallory = await service.client(), await service.client()
    await register(ada, "ada", "ada@example.com")
    await register(mallory, "mallory", "mallory@evil.example", ATTACKER_PASSWORD)
    [adas] = await service.mail_to("ada@example.com")
    await browser_sign_in(mallory, "mallory", ATTACKER_PASSWORD)
    link = _path(link_in(adas, "/verify-email?token="))

    seen = await mallory.get(link)
    assert seen.status_code == 403
    assert 'data-refusal="email_link_other_account"' in seen.text
    token = link.partition("?token=")[2]
    posted = await form_post(mallory, "/verify-email", {"token": token})
    assert posted.status_code == 403
    # Ada's code typed into Mallory's account: compared with Mallory's own proof only.
    mallory_token = await password_token(mallory, "mallory", ATTACKER_PASSWORD)
    typed = await mallory.post(
        "/api/v1/me/email-verification", json={"code": code_in(adas)}, headers=bearer(mallory_token)
    )
    assert typed.status_code in (400, 410), typed.text
    typed_on_page = await form_post(mallory, "/account/email/code", {"code": code_in(adas)})
    assert typed_on_page.status_code in (400, 410)
    assert await _email_of(service, "ada") == ("ada@example.com", False)
    assert await _email_of(service, "mallory") == ("mallory@evil.example", False)
    # Ada's link is still Ada's.
    await service.confirm_email("ada@example.com")
    assert await _email_of(service, "ada") == ("ada@example.com", True)


# ---- racing claims --------------------------------------------------------------------------


@pytest.fixture
async def race_service(tmp_path: Path, database_url: str | None) -> AsyncIterator[Service]:
    settings = security_settings(
        tmp_path,
        database_url=database_url,
        email_limit_per_ip="1000/hour",
        email_limit_per_account="1000/hour",
        **RACE_LIMITS,
    )
    async with running(settings) as running_service:
        yield running_service


async def test_sec14c_parallel_claims_of_one_address_exactly_one_wins(
    race_service: Service,
) -> None:
    service = race_service
    for round_ in range(2):
        target = f"prize{round_}@example.com"
        clients = [await service.client() for _ in range(PARALLEL)]
        holder = f"holder{round_}"
        await register(clients[0], holder, target)  # holds it unverified
        tokens = [await password_token(clients[0], holder)]
        for n, client in enumerate(clients[1:], start=1):
            name = f"c{round_}x{n}"
            await register(client, name, f"{name}@example.com")
            token = await password_token(client, name)
            asked = await client.patch("/api/v1/me", json={"email": target}, headers=bearer(token))
            assert asked.status_code == 200, asked.text
            tokens.append(token)
        codes = [code_in(m) for m in await service.mail_to(target)]
        assert len(codes) == PARALLEL
        answers = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/me/email-verification", json={"code": code}, headers=bearer(token)
                )
                for client, code, token in zip(clients, codes, tokens, strict=True)
            )
        )
        assert statuses(answers) == {200: 1, 409: PARALLEL - 1}, describe(answers)
        [winner] = [a.json()["account"] for a in answers if a.status_code == 200]
        owners = await service.count(
            "accounts WHERE lower(email) = :e AND email_verified", e=target
        )
        assert owners == 1
        assert await service.count("accounts WHERE lower(email) = :e", e=target) == 1
        assert winner["email"] == target
