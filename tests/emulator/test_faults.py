"""Faults switched on and off at run time, without a restart."""

from __future__ import annotations

import time

import httpx
import pytest

from lwa_accounts.emulator.faults import EmulatedConnectionDrop
from lwa_accounts.emulator.state import EmulatorState
from tests.emulator.conftest import ada_id


async def add_fault(client: httpx.AsyncClient, **spec: object) -> dict[str, object]:
    response = await client.post("/_emulator/faults", json=spec)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def profile(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/user/profile", params={"access_token": token})


@pytest.fixture
async def token(client: httpx.AsyncClient, state: EmulatorState) -> str:
    response = await client.post("/_emulator/tokens", json={"user_id": ada_id(state)})
    access: str = response.json()["access_token"]
    return access


async def test_next_three_calls_answer_503_then_recover(
    client: httpx.AsyncClient, token: str
) -> None:
    await add_fault(client, path="/USER/profile", status=503, times=3)
    statuses = [(await profile(client, token)).status_code for _ in range(4)]
    assert statuses == [503, 503, 503, 200]
    listed = (await client.get("/_emulator/faults")).json()
    assert listed[0]["hits"] == 3
    assert listed[0]["times"] == 0


async def test_injected_error_body_is_amazon_shaped(client: httpx.AsyncClient, token: str) -> None:
    await add_fault(client, path="/user/profile", status=500)
    response = await profile(client, token)
    assert response.status_code == 500
    assert list(response.json()) == ["error_description", "error"]
    assert response.json()["error"] == "server_error"


async def test_malformed_body(client: httpx.AsyncClient, token: str) -> None:
    await add_fault(client, path="/auth/o2/tokeninfo", body='{"aud": ')
    response = await client.get("/auth/o2/tokeninfo", params={"access_token": token})
    assert response.status_code == 200
    assert response.text == '{"aud": '
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


async def test_latency_then_the_real_answer(client: httpx.AsyncClient, token: str) -> None:
    await add_fault(client, path="/auth/o2/tokeninfo", latency_ms=200)
    started = time.monotonic()
    response = await client.get("/auth/o2/tokeninfo", params={"access_token": token})
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200
    assert response.json()["exp"] > 0


async def test_drop_reaches_an_asgi_transport_client_as_an_exception(
    client: httpx.AsyncClient, token: str
) -> None:
    await add_fault(client, path="/user/profile", drop=True, times=1)
    with pytest.raises(EmulatedConnectionDrop):
        await profile(client, token)
    assert (await profile(client, token)).status_code == 200


async def test_faults_clear_without_restart(client: httpx.AsyncClient, token: str) -> None:
    await add_fault(client, path="/user/profile", status=503)
    assert (await profile(client, token)).status_code == 503
    cleared = await client.delete("/_emulator/faults")
    assert cleared.json() == {"cleared": 1}
    assert (await profile(client, token)).status_code == 200


async def test_ratio_fires_on_a_share_of_calls(client: httpx.AsyncClient, token: str) -> None:
    await add_fault(client, path="/user/profile", status=503, ratio=0.5)
    statuses = [(await profile(client, token)).status_code for _ in range(200)]
    assert 50 < statuses.count(503) < 150
    assert set(statuses) == {200, 503}


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "/user/profile"},
        {"path": "user/profile", "status": 503},
        {"path": "/_emulator/faults", "status": 503},
        {"path": "/user/profile", "status": 99},
        {"path": "/user/profile", "status": 503, "ratio": 0},
        {"path": "/user/profile", "status": 503, "times": 0},
        {"status": 503},
    ],
)
async def test_bad_fault_specs_are_422(
    client: httpx.AsyncClient, state: EmulatorState, spec: dict[str, object]
) -> None:
    response = await client.post("/_emulator/faults", json=spec)
    assert response.status_code == 422
    assert state.faults.list() == []
