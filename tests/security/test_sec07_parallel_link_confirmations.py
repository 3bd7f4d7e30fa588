"""Items 7 and 11: one pending link flow confirmed in parallel with the right password.

A flow is single-use (security.md item 7): however many confirmations race, exactly one
gets a session (201), the others 410 ``flow_expired`` (or 409), one link row exists and the
flow ends ``spent`` once. Guarded by ``flows.amazon.finish_link`` (the flow row read
``FOR UPDATE``, the account row locked) and ``_finish`` (a compare-and-set
``pending -> spent``). On SQLite and PostgreSQL; across two server processes in
test_sec_races_two_servers.py.
"""

from __future__ import annotations

import asyncio

from tests.e2e.amazon_harness import ADA, PASSWORD
from tests.security.api_calls import link_flow
from tests.security.races import PARALLEL, database_url, describe, service, statuses
from tests.security.service import (
    Service,
    amazon_sign_in,
    me,
    register,
)

__all__ = ["database_url", "service"]  # the fixtures, imported for pytest


async def test_sec07_parallel_link_confirmations_of_one_flow_one_wins(service: Service) -> None:
    tv = await service.client()
    account = await register(tv, "ada", "ada@example.com")
    await service.confirm_email("ada@example.com")  # only a confirmed address is a target
    outcome = await amazon_sign_in(tv, ADA)
    assert outcome.json()["result"] == "link_required", outcome.text
    flow_id = outcome.json()["flow"]["id"]
    # Each confirmation from its own connection, as copies of the id would arrive.
    clients = [await service.client() for _ in range(PARALLEL)]

    responses = await asyncio.gather(*(link_flow(c, flow_id, PASSWORD) for c in clients))

    counted = statuses(responses)
    assert counted[201] == 1, describe(responses)
    assert set(counted) <= {201, 409, 410}, describe(responses)
    winner = next(r for r in responses if r.status_code == 201)
    assert winner.json()["account"]["id"] == account["id"]
    for loser in responses:
        if loser.status_code != 201:
            assert "session" not in loser.json()
    assert await service.count("amazon_identities") == 1
    assert await service.count("amazon_identities WHERE account_id = :id", id=account["id"]) == 1
    assert await service.count("pending_flows WHERE status = 'spent'") == 1
    assert await service.count("pending_flows WHERE status <> 'spent'") == 0
    live = await service.count(
        "sessions WHERE account_id = :id AND revoked_at IS NULL", id=account["id"]
    )
    assert live == 1
    assert (await me(tv, winner.json()["session"]["token"])).status_code == 200
    linked_events = await service.count("audit_events WHERE kind = 'amazon.linked'")
    assert linked_events == 1
