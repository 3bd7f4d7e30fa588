"""Item 10 under races: one Amazon identity attached in parallel to several accounts, and
several Amazon identities attached in parallel to one account.

``amazon_identities`` has the Amazon ``user_id`` as primary key and a unique ``account_id``
(``store/schema.py``); ``flows.amazon.attach_amazon`` locks the account row, decides, and
turns a constraint conflict into an audited 409. Exactly one attach wins each race; the
others get 409 and no detail about the winner. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio

from tests.e2e.amazon_harness import ADA
from tests.security.races import PARALLEL, database_url, describe, service, statuses
from tests.security.service import (
    Service,
    add_amazon_customer,
    bearer,
    mint,
    password_token,
    register,
)

__all__ = ["database_url", "service"]  # the fixtures, imported for pytest


async def test_sec10_one_identity_attached_to_many_accounts_in_parallel(
    service: Service,
) -> None:
    client = await service.client()
    accounts = []
    tokens = []
    for n in range(PARALLEL):
        accounts.append(await register(client, f"user{n}", f"user{n}@example.net"))
        tokens.append(await password_token(client, f"user{n}"))
    amazon_tokens = [await mint(client, ADA) for _ in range(PARALLEL)]

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/me/amazon", json={"access_token": a}, headers=bearer(t))
            for a, t in zip(amazon_tokens, tokens, strict=True)
        )
    )

    assert statuses(responses) == {200: 1, 409: PARALLEL - 1}, describe(responses)
    winner = next(r for r in responses if r.status_code == 200).json()["account"]
    for loser in responses:
        if loser.status_code == 409:
            assert loser.json()["code"] == "amazon_linked_elsewhere"
            assert winner["id"] not in loser.text
            assert winner["username"] not in loser.text
    assert await service.count("amazon_identities WHERE amazon_user_id = :u", u=ADA) == 1
    owner = await service.scalar(
        "SELECT account_id FROM amazon_identities WHERE amazon_user_id = :u", u=ADA
    )
    assert owner == winner["id"]


async def test_sec10_many_identities_attached_to_one_account_in_parallel(
    service: Service,
) -> None:
    client = await service.client()
    account = await register(client, "ada", "ada@example.org")
    token = await password_token(client, "ada")
    identities = [
        await add_amazon_customer(client, f"Ada {n}", f"ada{n}@amazon.example")
        for n in range(PARALLEL)
    ]
    amazon_tokens = [await mint(client, user_id) for user_id in identities]

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/me/amazon", json={"access_token": a}, headers=bearer(token))
            for a in amazon_tokens
        )
    )

    assert statuses(responses) == {200: 1, 409: PARALLEL - 1}, describe(responses)
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"already_linked"}
    assert await service.count("amazon_identities WHERE account_id = :id", id=account["id"]) == 1
    assert await service.count("amazon_identities") == 1
