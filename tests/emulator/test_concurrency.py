"""State stays consistent under concurrent requests."""

from __future__ import annotations

import asyncio
import threading

import httpx

from lwa_accounts.emulator.state import EmulatorState
from tests.emulator.conftest import REDIRECT_URI, WEB_ID, WEB_SECRET, ada_id, browser_authorize
from tests.emulator.test_authorization_code import authorize_url
from tests.emulator.test_device_flow import code_pair, poll


async def test_a_code_is_exchanged_once_under_a_race(client: httpx.AsyncClient) -> None:
    code = (await browser_authorize(client, authorize_url()))["code"][0]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": WEB_ID,
        "client_secret": WEB_SECRET,
    }
    responses = await asyncio.gather(*(client.post("/auth/o2/token", data=data) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 19


async def test_a_code_pair_yields_tokens_once_under_a_race(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    pair = await code_pair(client)
    state.decide_code(pair["user_code"], ada_id(state))
    responses = await asyncio.gather(*(poll(client, pair) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 19


def test_threads_minting_and_revoking_leave_no_orphans(state: EmulatorState) -> None:
    user_id = ada_id(state)
    client_id = WEB_ID

    def mint() -> None:
        for _ in range(50):
            state.mint_tokens(user_id, client_id, ("profile",))

    threads = [threading.Thread(target=mint) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(state.access_tokens) == len(state.refresh_tokens) == 200
    assert state.revoke(user_id) == 400
    assert state.access_tokens == {}
