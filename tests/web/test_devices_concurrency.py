"""Racing polls: a session comes out once, and Amazon is asked once, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.tv.harness import DeviceEnv, device_env, device_settings

PARALLEL = 10


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # a SQLite file in DATA_DIR
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def env(database_url: str | None, tmp_path: Path) -> AsyncIterator[DeviceEnv]:
    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    async with device_env(device_settings(tmp_path, **overrides)) as running:
        yield running


async def test_parallel_token_polls_hand_out_one_session(env: DeviceEnv) -> None:
    await env.local_account("ada", "ada@example.org")
    await env.phone_sign_in("ada")
    grant = (await env.tv.post("/api/v1/device/authorize", json={})).json()
    await env.phone_form("/activate", {"code": grant["user_code"]})
    await env.phone_form("/activate/decide", {"code": grant["user_code"], "decision": "approve"})
    responses = await asyncio.gather(
        *(
            env.tv.post("/api/v1/device/token", json={"device_code": grant["device_code"]})
            for _ in range(PARALLEL)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, [r.text for r in responses]
    assert all(
        r.json()["error"] in ("slow_down", "invalid_grant")
        for r in responses
        if r.status_code != 200
    )


async def test_parallel_amazon_polls_ask_amazon_once_and_sign_in_once(env: DeviceEnv) -> None:
    user_id = await env.add_customer("Tess Tv", "tess@example.net")
    auth = (await env.tv.post("/api/v1/amazon/device-authorizations", json={})).json()
    await env.decide_at_amazon(auth["user_code"], user_id)
    responses = await asyncio.gather(
        *(
            env.tv.post(
                "/api/v1/amazon/device-authorizations/poll", json={"authorization_id": auth["id"]}
            )
            for _ in range(PARALLEL)
        )
    )
    assert env.amazon_token_polls == 1
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1, [r.text for r in responses]
    # The losers: still pending, too fast, or (arriving after the winner) already spent.
    assert set(statuses) <= {201, 200, 410, 429}
