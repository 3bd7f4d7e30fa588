"""A wrong code on any /activate step is refused (400) and its audit event survives the
refusal's rollback (issue 10: on /activate/link and /activate/register it used to be
rolled back with the transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwa_accounts.store.db import Database
from tests.tv.harness import DeviceEnv, device_env, device_settings

STEPS = [
    "/activate",
    "/activate/decide",
    "/activate/amazon",
    "/activate/link",
    "/activate/register",
]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[DeviceEnv]:
    async with device_env(device_settings(tmp_path)) as running:
        yield running


async def refused_codes(env: DeviceEnv) -> list[str | None]:
    database: Database = env.app.state.services.database
    async with database.transaction() as stores:
        events = await stores.audit.list(limit=1000)
    return [e.ip for e in events if e.kind == "device.user_code_refused"]


@pytest.mark.parametrize("path", STEPS)
async def test_a_wrong_code_is_refused_and_audited_on_every_step(env: DeviceEnv, path: str) -> None:
    assert await refused_codes(env) == []
    response = await env.phone_form(
        path,
        {"code": "BCDF-GHJK", "decision": "approve", "password": "x", "name": "N", "username": "n"},
    )
    assert response.status_code == 400, response.text[:300]
    assert "not valid" in response.text or "code" in response.text.lower()
    refused = await refused_codes(env)
    assert len(refused) == 1, path
