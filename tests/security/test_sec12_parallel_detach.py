"""Item 12: detaching Amazon in parallel, with and without another way to sign in.

``flows.amazon.detach_amazon`` locks the account row, then checks the password and deletes
the link under that lock. With a password: of many parallel detaches from the account's
sessions exactly one succeeds (204), the others find nothing linked (404), never a 500, and
one ``amazon.unlinked`` event is written. Amazon-only: every detach is refused (409
``last_sign_in_method``) and the link stays. On SQLite and PostgreSQL; across two server
processes in test_sec_races_two_servers.py.
"""

from __future__ import annotations

import asyncio

from tests.e2e.amazon_harness import ADA
from tests.security.races import PARALLEL, database_url, describe, service, statuses
from tests.security.service import (
    Service,
    amazon_sign_in,
    bearer,
    mint,
    password_token,
    register,
)

__all__ = ["database_url", "service"]  # the fixtures, imported for pytest


async def test_sec12_parallel_detach_with_a_password_exactly_one_succeeds(
    service: Service,
) -> None:
    client = await service.client()
    account = await register(client, "ada", "ada@example.com")
    await service.confirm_email("ada@example.com")  # only a confirmed address is a target
    first = await password_token(client, "ada")
    attached = await client.post(
        "/api/v1/me/amazon",
        json={"access_token": await mint(client, ADA)},
        headers=bearer(first),
    )
    assert attached.status_code == 200, attached.text
    # Sessions opened after the attach (attaching ended the account's other sessions: item 9).
    tokens = [first] + [await password_token(client, "ada") for _ in range(PARALLEL - 1)]

    responses = await asyncio.gather(
        *(client.delete("/api/v1/me/amazon", headers=bearer(token)) for token in tokens)
    )

    counted = statuses(responses)
    assert counted[204] == 1, describe(responses)
    assert counted[404] == PARALLEL - 1, describe(responses)
    assert await service.count("amazon_identities") == 0
    assert await service.count("audit_events WHERE kind = 'amazon.unlinked'") == 1
    # Consistent afterwards: the password still signs in, Amazon is a new sign-up again.
    assert await password_token(client, "ada")
    again = await amazon_sign_in(client, ADA)
    assert again.json()["result"] == "link_required", again.text
    assert again.json()["flow"]["email"] == account["email"]


async def test_sec12_parallel_detach_of_the_last_method_is_always_refused(
    service: Service,
) -> None:
    client = await service.client()
    tokens = []
    for _ in range(PARALLEL):
        signed_in = await amazon_sign_in(client, ADA)
        assert signed_in.status_code == 201, signed_in.text
        tokens.append(signed_in.json()["session"]["token"])
    account_id = signed_in.json()["account"]["id"]

    responses = await asyncio.gather(
        *(client.delete("/api/v1/me/amazon", headers=bearer(token)) for token in tokens)
    )

    assert statuses(responses) == {409: PARALLEL}, describe(responses)
    assert {r.json()["code"] for r in responses} == {"last_sign_in_method"}
    assert await service.count("amazon_identities WHERE account_id = :id", id=account_id) == 1
    assert await service.count("audit_events WHERE kind = 'amazon.unlinked'") == 0
    back = await amazon_sign_in(client, ADA)
    assert back.status_code == 201
    assert back.json()["account"]["id"] == account_id
