"""Notices and the "This wasn't me" link, attacked over HTTP (docs/security.md, "Notices").

- A not-me link acts only on the account it was sent for: its payload rewritten to name
  another account breaks the signature, and a valid one of the attacker's own account
  touches nobody else.
- Racing confirmations of one link are harmless: every one succeeds, the sessions end
  once, the link is deleted once, nothing fails (SQLite and PostgreSQL).
- An intruder who knows the password cannot dodge the new-device notice by copying the
  victim's user agent or sending a forged "known browser" cookie.
- The new-device notice cannot be turned into a mail bomb against an address its account
  never verified (an account squatting someone else's address).
"""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text

from lwa_accounts import signing
from lwa_accounts.flows import new_devices
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import QueuedMail, link_in
from lwa_accounts.testing.mail import queued_mail as all_queued_mail
from lwa_accounts.web.cookies import KNOWN_BROWSER_COOKIE
from tests.e2e.amazon_harness import ADA, GRACE
from tests.security.races import PARALLEL, database_url, describe, service, statuses
from tests.security.service import (
    CSRF_RE,
    Service,
    bearer,
    browser_sign_in,
    form_post,
    me,
    mint,
    password_token,
    register,
)

__all__ = ["database_url", "service"]  # the fixtures, imported for pytest

VICTIM_BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


async def queued_mail(database: Database, to: str | None = None) -> list[QueuedMail]:
    """The notices queued: the verification mail every registration sends is not one."""
    return [mail for mail in await all_queued_mail(database, to) if mail.kind != "verify_email"]


async def with_amazon(service: Service, username: str, amazon_user_id: str) -> tuple[str, str]:
    """A password account with Amazon attached: a live bearer token and the not-me link
    (path and query) from its amazon_linked notice."""
    client = await service.client()
    await register(client, username, f"{username}@example.com")
    token = await password_token(client, username)
    attached = await client.post(
        "/api/v1/me/amazon",
        json={"access_token": await mint(client, amazon_user_id)},
        headers=bearer(token),
    )
    assert attached.status_code == 200, attached.text
    [notice] = await queued_mail(service.database, f"{username}@example.com")
    url = urlsplit(link_in(notice, "/not-me?token="))
    return token, url.query.removeprefix("token=")


async def verify_address(service: Service, username: str) -> None:
    async with service.database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE accounts SET email_verified = :yes WHERE username = :name"),
            {"yes": True, "name": username},
        )


async def linked(service: Service, username: str) -> int:
    return await service.count(
        "amazon_identities JOIN accounts ON accounts.id = amazon_identities.account_id "
        "WHERE accounts.username = :name",
        name=username,
    )


async def test_notice_not_me_link_rewritten_for_another_account_is_refused(
    service: Service,
) -> None:
    victim_token, _ = await with_amazon(service, "ada", ADA)
    victim_id = (await me(await service.client(), victim_token)).json()["account"]["id"]
    mallory_token, mallorys_link = await with_amazon(service, "mallory", GRACE)
    payload, stamp, signature = mallorys_link.split(".")
    claim = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claim["a"] = victim_id
    rewritten = base64.urlsafe_b64encode(json.dumps(claim).encode()).decode().rstrip("=")
    forged = f"{rewritten}.{stamp}.{signature}"
    attacker = await service.client()

    assert (await attacker.get(f"/not-me?token={forged}")).status_code == 400
    assert (await form_post(attacker, "/not-me", {"token": forged})).status_code == 400
    assert (await me(attacker, victim_token)).status_code == 200
    assert await linked(service, "ada") == 1

    # Her own, valid link locks down her own account and nobody else's.
    done = await form_post(attacker, "/not-me", {"token": mallorys_link})
    assert done.status_code == 303, done.text
    assert (await me(attacker, mallory_token)).status_code == 401
    assert (await me(attacker, victim_token)).status_code == 200
    assert (await linked(service, "mallory"), await linked(service, "ada")) == (0, 1)


async def test_notice_not_me_parallel_confirmations_are_harmless(service: Service) -> None:
    _, link = await with_amazon(service, "ada", ADA)
    client = await service.client()
    tokens = [await password_token(client, "ada") for _ in range(PARALLEL)]
    browsers = [await service.client() for _ in range(PARALLEL)]
    forms = []
    for browser in browsers:
        page = await browser.get(f"/not-me?token={link}")
        found = CSRF_RE.search(page.text)
        assert found, page.text
        forms.append({"csrf_token": found.group(1), "token": link})

    responses = await asyncio.gather(
        *(b.post("/not-me", data=f) for b, f in zip(browsers, forms, strict=True))
    )

    assert statuses(responses) == {303: PARALLEL}, describe(responses)
    assert [(await me(client, t)).status_code for t in tokens] == [401] * PARALLEL
    assert await linked(service, "ada") == 0
    events = "audit_events WHERE kind = 'notice.not_me'"
    assert await service.count(events) == PARALLEL
    assert await service.count(f"{events} AND detail LIKE '%unlinked_amazon=yes%'") == 1


async def new_device_notices(service: Service, address: str) -> int:
    return sum(m.kind == "notice_new_device" for m in await queued_mail(service.database, address))


async def test_notice_new_device_cannot_be_dodged_with_the_victims_user_agent(
    service: Service,
) -> None:
    victim = await service.client()
    victim.headers["User-Agent"] = VICTIM_BROWSER
    await register(victim, "ada", "ada@example.com")
    await verify_address(service, "ada")
    await browser_sign_in(victim, "ada")
    assert await new_device_notices(service, "ada@example.com") == 1
    await browser_sign_in(victim, "ada")  # the same browser again: known
    assert await new_device_notices(service, "ada@example.com") == 1
    memory = victim.cookies.get(KNOWN_BROWSER_COOKIE)
    assert memory

    intruder = await service.client()
    intruder.headers["User-Agent"] = VICTIM_BROWSER
    await browser_sign_in(intruder, "ada")
    assert await new_device_notices(service, "ada@example.com") == 2
    settings, now = service.services.settings, service.clock.now()
    ada_id = await service.scalar("SELECT id FROM accounts WHERE username = 'ada'")
    vouching = {"a": [new_devices.account_digest(ada_id)]}
    forged = [
        memory[:-4] + ("AAAA" if not memory.endswith("AAAA") else "BBBB"),
        signing.dumps(settings, "csrf", vouching, now=now),  # signed, for another purpose
        signing.dumps(settings, "not-me", vouching, now=now),
        "x" * 5000,
    ]
    for value in forged:
        forger = await service.client()
        forger.headers["User-Agent"] = VICTIM_BROWSER
        forger.cookies.set(KNOWN_BROWSER_COOKIE, value)
        await browser_sign_in(forger, "ada")
    assert await new_device_notices(service, "ada@example.com") == 2 + len(forged)
    [first, *_] = await queued_mail(service.database, "ada@example.com")
    assert "Chrome on Windows" in first.text


async def test_notice_new_device_is_no_mail_bomb_for_an_unverified_address(
    service: Service,
) -> None:
    squatter = await service.client()
    await register(squatter, "victim", "victim@example.com")  # not the squatter's address
    clients: list[httpx.AsyncClient] = [await service.client() for _ in range(10)]
    for client in clients:
        await browser_sign_in(client, "victim")
        await password_token(client, "victim")
    assert await queued_mail(service.database, "victim@example.com") == []
