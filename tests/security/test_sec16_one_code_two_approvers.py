"""Items 15-17: one device user code approved at the same time from two signed-in accounts.

Mallory, watching Ada's TV (or guessing its code), races Ada on /activate. A device grant
moves ``pending -> approved`` once (``flows.devices.decide_device`` saves it by
compare-and-set, ``store.devices.save_grant``): exactly one approval wins, every other
attempt is told the code is used or expired (400/410), and the TV gets exactly one session, for the
account that won. On SQLite and PostgreSQL; across two server processes in
test_sec_races_two_servers.py.
"""

from __future__ import annotations

import asyncio

import httpx

from tests.security.races import PARALLEL, database_url, describe, service, statuses
from tests.security.service import (
    ATTACKER_PASSWORD,
    Service,
    bearer,
    browser_sign_in,
    form_post,
    register,
)

__all__ = ["database_url", "service"]  # the fixtures, imported for pytest


async def test_sec16_one_user_code_approved_from_two_accounts_one_wins(service: Service) -> None:
    tv = await service.client()
    ada_phone = await service.client()
    mallory_phone = await service.client()
    ada = await register(ada_phone, "ada", "ada@example.com")
    mallory = await register(mallory_phone, "mallory", "mallory@evil.example", ATTACKER_PASSWORD)
    await browser_sign_in(ada_phone, "ada")
    await browser_sign_in(mallory_phone, "mallory", ATTACKER_PASSWORD)
    grant = (await tv.post("/api/v1/device/authorize", json={"device_name": "Ada's TV"})).json()
    code = grant["user_code"]
    for phone in (ada_phone, mallory_phone):
        shown = await form_post(phone, "/activate", {"code": code})
        assert "Ada&#39;s TV" in shown.text or "Ada's TV" in shown.text, shown.text

    decide = {"code": code, "decision": "approve"}
    phones = [ada_phone, mallory_phone] * (PARALLEL // 2)
    responses = await asyncio.gather(*(form_post(p, "/activate/decide", decide) for p in phones))

    counted = statuses(responses)
    assert counted[200] == 1, describe(responses)
    # The others: the code is no longer pending (400 "not valid or has expired", or 410
    # when the lookup saw it pending and the save lost the race).
    assert counted[400] + counted[410] == len(phones) - 1, describe(responses)
    won = next(i for i, r in enumerate(responses) if r.status_code == 200)
    assert "Device approved" in responses[won].text
    assert sum("Device approved" in r.text for r in responses) == 1
    winner = ada if phones[won] is ada_phone else mallory
    assert await service.count("audit_events WHERE kind = 'device.approved'") == 1

    service.clock.advance(grant["interval"])
    polls = await asyncio.gather(*(poll(tv, grant["device_code"]) for _ in range(PARALLEL)))
    assert statuses(polls)[200] == 1, describe(polls)
    session = next(p for p in polls if p.status_code == 200).json()
    assert session["account"]["id"] == winner["id"]
    me = await tv.get("/api/v1/me", headers=bearer(session["session"]["token"]))
    assert me.json()["account"]["id"] == winner["id"]
    device_sessions = await service.count("sessions WHERE kind = 'device'")
    assert device_sessions == 1


async def poll(tv: httpx.AsyncClient, device_code: str) -> httpx.Response:
    return await tv.post("/api/v1/device/token", json={"device_code": device_code})
