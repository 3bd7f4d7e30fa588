"""tokeninfo and /user/profile (lwa-protocol.md sections 3 and 4)."""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx
import pytest

from lwa_accounts.emulator.state import EmulatorState
from tests.emulator.conftest import DEVICE_ID, WEB_ID, ada_id
from tests.emulator.test_device_flow import assert_error


async def mint(client: httpx.AsyncClient, user_id: str, **extra: str) -> str:
    response = await client.post("/_emulator/tokens", json={"user_id": user_id, **extra})
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]
    return token


async def test_tokeninfo_shape_and_countdown(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    token = await mint(client, ada_id(state))
    info = await client.get("/auth/o2/tokeninfo?access_token=" + quote(token, safe=""))
    assert info.status_code == 200
    body = info.json()
    assert list(body) == ["aud", "user_id", "iss", "exp", "app_id", "iat"]
    assert body["aud"] == WEB_ID
    assert body["user_id"] == ada_id(state)
    assert body["iss"] == "https://www.amazon.com"
    assert 3590 <= body["exp"] <= 3600  # seconds remaining, not an epoch (slack: slow CI)
    assert body["app_id"].startswith("amzn1.application.")
    assert abs(body["iat"] - time.time()) < 60
    await client.post("/_emulator/clock", json={"advance_seconds": 1000})
    later = (await client.get("/auth/o2/tokeninfo", params={"access_token": token})).json()
    assert 2590 <= later["exp"] <= 2600


async def test_tokeninfo_refuses_unknown_and_expired(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    token = await mint(client, ada_id(state))
    unknown = await client.get("/auth/o2/tokeninfo", params={"access_token": "Atza|forged"})
    assert_error(unknown, 400, "invalid_token")
    assert_error(await client.get("/auth/o2/tokeninfo"), 400, "invalid_request")
    await client.post("/_emulator/clock", json={"advance_seconds": 3600})
    expired = await client.get("/auth/o2/tokeninfo", params={"access_token": token})
    assert_error(expired, 400, "invalid_token")


async def test_tokeninfo_aud_is_the_client_that_asked(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    token = await mint(client, ada_id(state), client_id=DEVICE_ID)
    info = await client.get("/auth/o2/tokeninfo", params={"access_token": token})
    assert info.json()["aud"] == DEVICE_ID


@pytest.mark.parametrize(
    ("scope", "fields"),
    [
        ("profile", ["user_id", "name", "email"]),
        ("profile:user_id", ["user_id"]),
        ("postal_code", ["user_id", "postal_code"]),
        ("profile postal_code", ["user_id", "name", "email", "postal_code"]),
    ],
)
async def test_profile_fields_follow_the_granted_scope(
    client: httpx.AsyncClient, state: EmulatorState, scope: str, fields: list[str]
) -> None:
    token = await mint(client, ada_id(state), scope=scope)
    response = await client.get("/user/profile", params={"access_token": token})
    assert response.status_code == 200
    assert list(response.json()) == fields
    assert response.headers["x-amzn-requestid"]


@pytest.mark.parametrize("how", ["query", "bearer", "lower-bearer", "x-amz-access-token"])
async def test_profile_takes_the_token_three_ways(
    client: httpx.AsyncClient, state: EmulatorState, how: str
) -> None:
    token = await mint(client, ada_id(state))
    params, headers = {}, {}
    if how == "query":
        params = {"access_token": token}
    elif how == "x-amz-access-token":
        headers = {"x-amz-access-token": token}
    else:
        headers = {"Authorization": ("bearer " if how == "lower-bearer" else "Bearer ") + token}
    response = await client.get("/User/Profile", params=params, headers=headers)
    assert response.status_code == 200
    assert response.json()["name"] == "Ada Lovelace"


async def test_profile_errors_carry_request_id(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    unknown = await client.get("/user/profile", headers={"Authorization": "Bearer Atza|nope"})
    assert_error(unknown, 401, "invalid_token")
    assert unknown.json()["request_id"] == unknown.headers["x-amzn-requestid"]
    missing = await client.get("/user/profile")
    assert_error(missing, 400, "invalid_request")
    assert missing.json()["request_id"]
    alexa = await client.post(
        "/_emulator/clients",
        json={
            "client_id": "avs-client",
            "redirect_uris": [],
            "allowed_scopes": ["alexa:all", "profile"],
        },
    )
    assert alexa.status_code == 201
    token = await mint(client, ada_id(state), client_id="avs-client", scope="alexa:all")
    forbidden = await client.get("/user/profile", params={"access_token": token})
    assert_error(forbidden, 403, "insufficient_scope")
    assert forbidden.json()["request_id"]


async def test_profile_follows_a_changed_email(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    token = await mint(client, ada_id(state))
    changed = await client.patch(
        f"/_emulator/customers/{ada_id(state)}", json={"email": "ada@analytical.example"}
    )
    assert changed.status_code == 200
    profile = await client.get("/user/profile", params={"access_token": token})
    assert profile.json()["email"] == "ada@analytical.example"
