"""Secrets the server reads back are sealed at rest (sealing.Sealer): a hand-off's flow id
and Amazon's device code. The database alone does not reveal them, and an altered or
moved sealed value never opens: it gives a clear 4xx, not a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import CodePair
from lwa_accounts.errors import AmazonProtocolError
from lwa_accounts.flows.context import ClientInfo, Context
from lwa_accounts.flows.tv_amazon import register_authorization
from lwa_accounts.sealing import VERSION, Sealer
from lwa_accounts.store.db import Database
from tests.tv.harness import DeviceEnv, device_env, device_settings

AMAZON_INTERVAL = 30


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[DeviceEnv]:
    async with device_env(device_settings(tmp_path)) as running:
        yield running


def _database(env: DeviceEnv) -> Database:
    database: Database = env.app.state.services.database
    return database


async def _sql(env: DeviceEnv, statement: str, **params: Any) -> list[Any]:
    async with _database(env).engine.begin() as connection:
        result = await connection.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def _start(env: DeviceEnv) -> dict[str, Any]:
    response = await env.tv.post(
        "/api/v1/amazon/device-authorizations", json={"device_name": "Den TV"}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _poll(env: DeviceEnv, auth: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await env.tv.post(
        "/api/v1/amazon/device-authorizations/poll", json={"authorization_id": auth["id"]}
    )
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def _link_handoff(env: DeviceEnv, email: str) -> tuple[str, str]:
    """A TV sign-in that needs the local password: (flow id, hand-off code)."""
    await env.local_account(email.split("@")[0], email)
    user_id = await env.add_customer("Some One", email)
    auth = await _start(env)
    await env.decide_at_amazon(auth["user_code"], user_id)
    await env.advance(AMAZON_INTERVAL)
    status, body = await _poll(env, auth)
    assert (status, body["result"]) == (200, "link_required"), body
    return body["flow"]["id"], body["handoff"]["code"]


# ---- Amazon's device code ------------------------------------------------------------------


async def test_amazons_device_code_is_sealed_while_pending(env: DeviceEnv) -> None:
    auth = await _start(env)
    id_hash = dg.code_digest(auth["id"])
    [(stored,)] = await _sql(env, "SELECT device_code FROM amazon_device_authorizations")
    async with _database(env).transaction() as stores:
        read = await stores.devices.get_authorization(id_hash)
    assert read is not None
    assert read.device_code is not None
    assert stored.startswith(VERSION + ".")
    assert read.device_code not in stored  # the clear code is nowhere in the row
    assert Sealer(env.settings).open("amazon-device-code", stored, aad=id_hash) == read.device_code


@pytest.mark.parametrize("tamper", ["clear", "moved"])
async def test_a_device_code_that_does_not_open_expires_the_authorization(
    env: DeviceEnv, tamper: str
) -> None:
    auth = await _start(env)
    other = await _start(env)
    if tamper == "clear":  # as a row written before sealing would be
        new_value = "85581b0f-cf10-459e-b823-477a9220f958"
    else:  # another row's sealed code: bound to that row, so it does not open here
        [(new_value,)] = await _sql(
            env,
            "SELECT device_code FROM amazon_device_authorizations WHERE id_hash = :h",
            h=dg.code_digest(other["id"]),
        )
    await _sql(
        env,
        "UPDATE amazon_device_authorizations SET device_code = :v WHERE id_hash = :h",
        v=new_value,
        h=dg.code_digest(auth["id"]),
    )
    await env.advance(AMAZON_INTERVAL)
    asked = env.amazon_token_polls
    status, body = await _poll(env, auth)
    assert (status, body["code"]) == (410, "expired")
    assert env.amazon_token_polls == asked  # Amazon was not asked with a bad code
    # The other authorization is untouched.
    assert await _poll(env, other) == (200, {"result": "pending"})


async def test_an_overlong_device_code_from_amazon_is_refused(env: DeviceEnv) -> None:
    pair = CodePair(
        user_code="ABC123",
        device_code="x" * 257,
        verification_uri="http://amazon.test/code",
        expires_in=600,
        interval=30,
    )
    ctx = Context(env.app.state.services.deps, _database(env), ClientInfo())
    with pytest.raises(AmazonProtocolError):
        async with ctx.transaction() as tx:
            await register_authorization(tx, pair, device_name=None)
    assert await _sql(env, "SELECT id_hash FROM amazon_device_authorizations") == []


# ---- the hand-off's flow id --------------------------------------------------------------


async def test_handoff_flow_id_is_sealed(env: DeviceEnv) -> None:
    flow_id, code = await _link_handoff(env, "ada@example.net")
    [(sealed,)] = await _sql(
        env, "SELECT sealed_flow_id FROM device_grants WHERE purpose = 'handoff'"
    )
    assert sealed.startswith(VERSION + ".")
    assert flow_id not in sealed
    canonical = dg.parse_user_code(code)
    assert canonical is not None
    opened = Sealer(env.settings).open("handoff-flow-id", sealed, aad=dg.code_digest(canonical))
    assert opened == flow_id
    page = await env.phone_form("/activate", {"code": code})
    assert page.status_code == 200
    assert "ada@example.net" in page.text


async def test_handoff_sealed_ids_swapped_between_rows_do_not_open(env: DeviceEnv) -> None:
    _, code_a = await _link_handoff(env, "ada@example.net")
    _, code_b = await _link_handoff(env, "bob@example.net")
    rows = await _sql(env, "SELECT id, sealed_flow_id FROM device_grants WHERE purpose = 'handoff'")
    assert len(rows) == 2
    (id_a, sealed_a), (id_b, sealed_b) = rows
    swap = "UPDATE device_grants SET sealed_flow_id = :v WHERE id = :i"
    await _sql(env, swap, v=sealed_b, i=id_a)
    await _sql(env, swap, v=sealed_a, i=id_b)
    for code in (code_a, code_b):
        page = await env.phone_form("/activate", {"code": code})
        assert page.status_code == 400, page.text
        assert "bob@example.net" not in page.text
        assert "ada@example.net" not in page.text


async def test_a_handoff_sealed_with_the_old_keystream_does_not_open(env: DeviceEnv) -> None:
    _, code = await _link_handoff(env, "ada@example.net")
    await _sql(
        env,
        "UPDATE device_grants SET sealed_flow_id = :v WHERE purpose = 'handoff'",
        v="666c775f" * 8,  # hex, as the previous XOR seal stored it
    )
    page = await env.phone_form("/activate", {"code": code})
    assert page.status_code == 400
