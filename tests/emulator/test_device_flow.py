"""Code-based linking: create/codepair and the device_code poll (lwa-protocol.md section 1)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.emulator.state import EmulatorState
from tests.emulator.conftest import BASE, DEVICE_ID, WEB_ID, ada_id


async def code_pair(client: httpx.AsyncClient, **extra: str) -> dict[str, Any]:
    data = {"response_type": "device_code", "client_id": DEVICE_ID, "scope": "profile", **extra}
    response = await client.post("/auth/o2/create/codepair", data=data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def poll(client: httpx.AsyncClient, pair: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/auth/o2/token",
        data={
            "grant_type": "device_code",
            "device_code": pair["device_code"],
            "user_code": pair["user_code"],
        },
    )


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body)[:2] == ["error_description", "error"]
    assert body["error"] == error


async def test_code_pair_has_amazons_shape_and_key_order(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/o2/create/codepair",
        data={"response_type": "device_code", "client_id": DEVICE_ID, "scope": "profile"},
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["user_code", "device_code", "interval", "verification_uri", "expires_in"]
    assert re.fullmatch(r"[A-Z0-9]{6}", body["user_code"])
    assert re.fullmatch(r"[0-9a-f-]{36}", body["device_code"])
    assert body["verification_uri"] == BASE + "/code"
    assert (body["expires_in"], body["interval"]) == (600, 30)
    assert "verification_uri_complete" not in body


async def test_code_pair_accepts_json_and_scope_data(client: httpx.AsyncClient) -> None:
    scope_data = {"alexa:all": {"productID": "tv", "productInstanceAttributes": {}}}
    response = await client.post(
        "/auth/O2/create/codePair",
        json={
            "response_type": "device_code",
            "client_id": DEVICE_ID,
            "scope": "profile:user_id",
            "scope_data": scope_data,
        },
    )
    assert response.status_code == 200, response.text


async def test_unknown_client_gets_invalid_value(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/o2/create/codepair",
        data={"response_type": "device_code", "client_id": "{{client_id}}", "scope": "profile"},
    )
    assert_error(response, 400, "InvalidValue")
    assert response.json() == {
        "error_description": "The request has an invalid parameter : client_id",
        "error": "InvalidValue",
    }


@pytest.mark.parametrize("missing", ["response_type", "client_id", "scope"])
async def test_missing_parameters_get_invalid_request(
    client: httpx.AsyncClient, state: EmulatorState, missing: str
) -> None:
    data = {"response_type": "device_code", "client_id": DEVICE_ID, "scope": "profile"}
    del data[missing]
    response = await client.post("/auth/o2/create/codepair", data=data)
    assert_error(response, 400, "invalid_request")
    assert missing in response.json()["error_description"]
    assert state.code_pairs == {}


async def test_bad_scope_and_bad_body_are_refused(client: httpx.AsyncClient) -> None:
    data = {"response_type": "device_code", "client_id": DEVICE_ID, "scope": "wallet"}
    assert_error(await client.post("/auth/o2/create/codepair", data=data), 400, "invalid_scope")
    garbage = await client.post(
        "/auth/o2/create/codepair",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert_error(garbage, 400, "invalid_request")
    multipart = await client.post(
        "/auth/o2/create/codepair",
        content=b"\xff\xfe",
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert_error(multipart, 400, "invalid_request")
    wrong_type = {"response_type": "code", "client_id": DEVICE_ID, "scope": "profile"}
    assert_error(
        await client.post("/auth/o2/create/codepair", data=wrong_type), 400, "invalid_request"
    )


async def test_poll_is_pending_then_tokens_then_spent(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    pair = await code_pair(client)
    assert_error(await poll(client, pair), 400, "authorization_pending")
    assert_error(await poll(client, pair), 400, "authorization_pending")  # 5 s polls tolerated
    approved = await client.post(
        f"/_emulator/codes/{pair['user_code'].lower()}/approve", json={"user_id": ada_id(state)}
    )
    assert approved.status_code == 200, approved.text
    tokens = await poll(client, pair)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["cache-control"] == "no-store"
    assert tokens.headers["pragma"] == "no-cache"
    body = tokens.json()
    assert list(body) == ["access_token", "refresh_token", "token_type", "expires_in"]
    assert body["access_token"].startswith("Atza|")
    assert len(body["access_token"]) >= 350
    assert body["refresh_token"].startswith("Atzr|")
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
    assert_error(await poll(client, pair), 400, "invalid_code_pair")  # the pair is spent


async def test_device_refresh_needs_client_id_but_no_secret(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    pair = await code_pair(client)
    state.decide_code(pair["user_code"], ada_id(state))
    refresh = (await poll(client, pair)).json()["refresh_token"]
    no_client = await client.post(
        "/auth/o2/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert_error(no_client, 400, "invalid_request")
    renewed = await client.post(
        "/auth/o2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": DEVICE_ID},
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["refresh_token"] == refresh  # SP-API: the one you sent


async def test_poll_with_wrong_user_code_or_unknown_device_code(
    client: httpx.AsyncClient,
) -> None:
    pair = await code_pair(client)
    wrong = dict(pair, user_code="ZZZZZZ" if pair["user_code"] != "ZZZZZZ" else "YYYYYY")
    assert_error(await poll(client, wrong), 400, "invalid_code_pair")
    assert_error(await poll(client, dict(pair, device_code="nope")), 400, "invalid_code_pair")
    no_user_code = await client.post(
        "/auth/o2/token", data={"grant_type": "device_code", "device_code": pair["device_code"]}
    )
    assert_error(no_user_code, 400, "invalid_request")


async def test_poll_without_user_code_is_a_switch(
    client: httpx.AsyncClient, config: EmulatorConfig
) -> None:
    pair = await code_pair(client)
    data = {"grant_type": "device_code", "device_code": pair["device_code"]}
    assert_error(await client.post("/auth/o2/token", data=data), 400, "invalid_request")
    config.poll_requires_user_code = False
    assert_error(await client.post("/auth/o2/token", data=data), 400, "authorization_pending")


async def test_rfc_urn_grant_type_is_refused_unless_switched_on(
    client: httpx.AsyncClient, config: EmulatorConfig
) -> None:
    pair = await code_pair(client)
    urn = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": pair["device_code"],
        "user_code": pair["user_code"],
    }
    assert_error(await client.post("/auth/o2/token", data=urn), 400, "unsupported_grant_type")
    config.accept_device_code_urn = True
    assert_error(await client.post("/auth/o2/token", data=urn), 400, "authorization_pending")


async def test_expiry_through_the_clock_endpoint(client: httpx.AsyncClient) -> None:
    pair = await code_pair(client)
    moved = await client.post("/_emulator/clock", json={"advance_seconds": 601})
    assert moved.status_code == 200
    assert moved.json()["offset_seconds"] == 601
    assert_error(await poll(client, pair), 400, "invalid_code_pair")
    approve = await client.post(
        f"/_emulator/codes/{pair['user_code']}/approve", json={"user_id": "amzn1.account.X"}
    )
    assert approve.status_code == 404


async def test_expired_token_switch(client: httpx.AsyncClient, config: EmulatorConfig) -> None:
    config.expired_code_pair_error = "expired_token"
    pair = await code_pair(client)
    await client.post("/_emulator/clock", json={"advance_seconds": 600})
    assert_error(await poll(client, pair), 400, "expired_token")


async def test_denied_pair_answers_access_denied(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    pair = await code_pair(client)
    denied = await client.post(f"/_emulator/codes/{pair['user_code']}/deny")
    assert denied.json() == {"user_code": pair["user_code"], "status": "denied"}
    assert_error(await poll(client, pair), 400, "access_denied")


async def test_slow_down_when_enforced(client: httpx.AsyncClient, config: EmulatorConfig) -> None:
    config.enforce_poll_interval = True
    config.min_poll_interval = 5
    pair = await code_pair(client)
    assert_error(await poll(client, pair), 400, "authorization_pending")
    assert_error(await poll(client, pair), 400, "slow_down")
    await client.post("/_emulator/clock", json={"advance_seconds": 5})
    assert_error(await poll(client, pair), 400, "authorization_pending")


async def test_poll_accepts_a_json_body(client: httpx.AsyncClient) -> None:
    pair = await code_pair(client)
    response = await client.post(
        "/AUTH/o2/Token",
        content=json.dumps(
            {
                "grant_type": "device_code",
                "device_code": pair["device_code"],
                "user_code": pair["user_code"],
            }
        ),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert_error(response, 400, "authorization_pending")


async def test_refresh_token_rotation_is_a_switch(
    client: httpx.AsyncClient, state: EmulatorState, config: EmulatorConfig
) -> None:
    config.rotate_refresh_tokens = True
    pair = await code_pair(client)
    state.decide_code(pair["user_code"], ada_id(state))
    old = (await poll(client, pair)).json()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": old, "client_id": DEVICE_ID}
    rotated = await client.post("/auth/o2/token", data=data)
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != old
    assert_error(await client.post("/auth/o2/token", data=data), 400, "invalid_grant")
    newer = {**data, "refresh_token": rotated.json()["refresh_token"]}
    assert (await client.post("/auth/o2/token", data=newer)).status_code == 200


@pytest.mark.parametrize("client_id", [DEVICE_ID, WEB_ID])
async def test_revoked_device_refresh_without_secret_is_invalid_grant(
    client: httpx.AsyncClient, state: EmulatorState, client_id: str
) -> None:
    """The customer removed the app at Amazon: a device's refresh (client id, no secret,
    lwa-protocol.md 2.3) gets 400 invalid_grant (2.4, 5), even for a security profile that
    has a secret (it used to get 401 invalid_client, which reads as a configuration error)."""
    pair = await code_pair(client, client_id=client_id)
    state.decide_code(pair["user_code"], ada_id(state))
    refresh = (await poll(client, pair)).json()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id}
    assert (await client.post("/auth/o2/token", data=data)).status_code == 200
    revoked = await client.post(f"/_emulator/customers/{ada_id(state)}/revoke", json={})
    assert revoked.status_code == 200, revoked.text
    refused = await client.post("/auth/o2/token", data=data)
    assert_error(refused, 400, "invalid_grant")
    assert "User may have revoked" in refused.json()["error_description"]
    # Another client presenting the token still has to authenticate itself.
    other = WEB_ID if client_id == DEVICE_ID else DEVICE_ID
    stolen = await client.post("/auth/o2/token", data=data | {"client_id": other})
    assert stolen.status_code in (400, 401)
    assert stolen.json()["error"] in ("invalid_grant", "invalid_client")
