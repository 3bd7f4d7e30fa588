"""Item 6b: a link step's e-mailed code raced over HTTP, on SQLite and PostgreSQL.

Guessing in parallel gets no more comparisons than the code's budget (5, then the code
and the right digits are dead: ``flows/email_codes.py`` reserves each guess first) nor
than the flow's attempts (each typed code takes one in a committed transaction first:
``flows/amazon/link_by_code.py``); the right code sent from many connections at once
links once and signs in once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from lwa_accounts.core.email_codes import MAX_WRONG_CODES
from lwa_accounts.testing.mail import code_in, queued_mail
from tests.e2e.amazon_harness import ADA
from tests.security.races import PARALLEL, database_url, describe, service, statuses
from tests.security.service import Service, amazon_sign_in, register

__all__ = ["database_url", "service"]  # the fixtures, imported for pytest

EMAIL = "ada@example.com"


async def verified_link_step(service: Service, tv: httpx.AsyncClient) -> tuple[str, str]:
    """A verified local account, a TV's link step for it and the code e-mailed for it."""
    account = await register(tv, "ada", EMAIL)
    async with service.database.transaction() as stores:
        await stores.accounts.update(account["id"], email_verified=True)
    outcome = await amazon_sign_in(tv, ADA)
    assert outcome.json()["result"] == "link_required", outcome.text
    flow_id: str = outcome.json()["flow"]["id"]
    sent = await tv.post("/api/v1/flows/email-code", json={"flow_id": flow_id})
    assert sent.status_code == 202, sent.text
    (mail,) = [m for m in await queued_mail(service.database, EMAIL) if m.kind == "prove_account"]
    return flow_id, code_in(mail)


async def typed(client: httpx.AsyncClient, flow_id: str, code: str) -> httpx.Response:
    return await client.post("/api/v1/flows/link", json={"flow_id": flow_id, "code": code})


def codes_of(responses: list[httpx.Response]) -> list[Any]:
    return [r.json().get("code") for r in responses]


async def test_sec06b_parallel_code_guesses_get_no_more_than_the_budget(service: Service) -> None:
    tv = await service.client()
    flow_id, code = await verified_link_step(service, tv)
    guesses = [f"{n:06d}" for n in range(40) if f"{n:06d}" != code][: PARALLEL + 4]
    clients = [await service.client() for _ in guesses]

    responses = await asyncio.gather(
        *(typed(c, flow_id, g) for c, g in zip(clients, guesses, strict=True))
    )

    counted = statuses(responses)
    assert set(counted) <= {400, 410}, describe(responses)
    assert counted[400] <= MAX_WRONG_CODES - 1, describe(responses)
    assert set(codes_of(responses)) <= {
        "wrong_email_code",
        "email_code_exhausted",
        "email_link_expired",
    }, describe(responses)
    compared = await service.scalar("SELECT attempts FROM email_codes")
    assert compared <= MAX_WRONG_CODES
    # The code is dead now, for the right digits too; nothing was linked.
    late = await typed(tv, flow_id, code)
    assert late.status_code == 410, late.text
    assert await service.count("amazon_identities") == 0
    assert await service.count("sessions WHERE kind = 'device'") == 0


async def test_sec06b_parallel_right_codes_link_once(service: Service) -> None:
    tv = await service.client()
    flow_id, code = await verified_link_step(service, tv)
    clients = [await service.client() for _ in range(PARALLEL)]

    responses = await asyncio.gather(*(typed(c, flow_id, code) for c in clients))

    counted = statuses(responses)
    assert counted[201] == 1, describe(responses)
    assert set(counted) <= {201, 409, 410}, describe(responses)
    assert await service.count("amazon_identities") == 1
    assert await service.count("pending_flows WHERE status = 'spent'") == 1
    assert await service.count("sessions WHERE kind = 'device' AND revoked_at IS NULL") == 1
    assert await service.count("email_codes WHERE used_at IS NOT NULL") == 1
    linked = await service.scalar("SELECT detail FROM audit_events WHERE kind = 'amazon.linked'")
    assert linked == "method=code"
    assert await service.count("audit_events WHERE kind = 'amazon.linked'") == 1
