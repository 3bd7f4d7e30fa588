"""The test-control API under /_emulator/: customers, clients, tokens, codes, revoke, reset."""

from __future__ import annotations

import re

import httpx
import pytest

from lwa_accounts.emulator.state import EmulatorState
from tests.emulator.conftest import DEVICE_ID, WEB_ID, WEB_SECRET, ada_id
from tests.emulator.test_device_flow import assert_error, code_pair, poll


async def test_customers_crud(client: httpx.AsyncClient) -> None:
    listed = await client.get("/_emulator/customers")
    assert [c["email"] for c in listed.json()] == ["ada@example.com", "grace@example.com"]
    created = await client.post(
        "/_emulator/customers",
        json={"name": "Alan Turing", "email": "alan@example.com", "postal_code": "SW1A 1AA"},
    )
    assert created.status_code == 201
    user_id = created.json()["user_id"]
    assert re.fullmatch(r"amzn1\.account\.[A-Z0-9]{28}", user_id)
    assert "password" not in created.json()
    fixed = await client.post(
        "/_emulator/customers",
        json={"name": "Fixed", "email": "fixed@example.com", "user_id": "amzn1.account.FIXED1"},
    )
    assert fixed.json()["user_id"] == "amzn1.account.FIXED1"
    patched = await client.patch(
        f"/_emulator/customers/{user_id}", json={"name": "A. Turing", "postal_code": None}
    )
    assert patched.json()["name"] == "A. Turing"
    assert patched.json()["postal_code"] is None
    nulled = await client.patch(f"/_emulator/customers/{user_id}", json={"email": None})
    assert nulled.status_code == 422
    assert (await client.get(f"/_emulator/customers/{user_id}")).json()["name"] == "A. Turing"
    assert (await client.delete(f"/_emulator/customers/{user_id}")).status_code == 204
    assert (await client.get(f"/_emulator/customers/{user_id}")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x@example.com"},
        {"name": "X", "email": "not-an-email"},
        {"name": "X", "email": "x@example.com", "user_id": "someone"},
        {"name": "X", "email": "x@example.com", "unknown": 1},
        ["a list"],
    ],
)
async def test_bad_customer_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient, state: EmulatorState, body: object
) -> None:
    response = await client.post("/_emulator/customers", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert len(state.list_customers()) == 2


async def test_customer_conflicts_and_unknown_ids(client: httpx.AsyncClient) -> None:
    duplicate = await client.post(
        "/_emulator/customers", json={"name": "Ada 2", "email": "ADA@example.com"}
    )
    assert duplicate.status_code == 409
    assert (
        await client.patch("/_emulator/customers/amzn1.account.NOPE", json={})
    ).status_code == 404
    assert (await client.delete("/_emulator/customers/amzn1.account.NOPE")).status_code == 404
    bad_patch = await client.get("/_emulator/customers")
    grace = bad_patch.json()[1]["user_id"]
    assert (
        await client.patch(f"/_emulator/customers/{grace}", json={"email": "ada@example.com"})
    ).status_code == 409
    assert (
        await client.patch(f"/_emulator/customers/{grace}", json={"name": ""})
    ).status_code == 422


async def test_clients_can_be_registered_and_used(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/_emulator/clients")).json()
    assert {c["client_id"] for c in listed} == {WEB_ID, DEVICE_ID}
    created = await client.post(
        "/_emulator/clients",
        json={
            "client_id": "amzn1.application-oa2-client.partner",
            "client_secret": "s3cret",
            "redirect_uris": ["https://partner.test/cb"],
        },
    )
    assert created.status_code == 201
    assert created.json()["has_secret"] is True
    pair = await client.post(
        "/auth/o2/create/codepair",
        data={
            "response_type": "device_code",
            "client_id": "amzn1.application-oa2-client.partner",
            "scope": "profile",
        },
    )
    assert pair.status_code == 200
    again = await client.post(
        "/_emulator/clients",
        json={"client_id": "amzn1.application-oa2-client.partner", "redirect_uris": []},
    )
    assert again.status_code == 409
    bad = await client.post(
        "/_emulator/clients", json={"client_id": "c", "redirect_uris": ["ftp://x"]}
    )
    assert bad.status_code == 422


async def test_minted_tokens_default_to_the_web_client(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    minted = await client.post("/_emulator/tokens", json={"user_id": ada_id(state)})
    assert minted.status_code == 201
    body = minted.json()
    assert list(body) == ["access_token", "refresh_token", "token_type", "expires_in"]
    info = await client.get("/auth/o2/tokeninfo", params={"access_token": body["access_token"]})
    assert info.json()["aud"] == WEB_ID
    profile = await client.get("/user/profile", params={"access_token": body["access_token"]})
    assert list(profile.json()) == ["user_id", "name", "email", "postal_code"]
    unknown_user = await client.post("/_emulator/tokens", json={"user_id": "amzn1.account.X"})
    assert unknown_user.status_code == 404
    bad_scope = await client.post(
        "/_emulator/tokens", json={"user_id": ada_id(state), "scope": "wallet"}
    )
    assert bad_scope.status_code == 422


async def test_revoke_kills_refresh_and_access_tokens(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    tokens = (await client.post("/_emulator/tokens", json={"user_id": ada_id(state)})).json()
    revoked = await client.post(f"/_emulator/customers/{ada_id(state)}/revoke")
    assert revoked.json() == {"revoked_tokens": 2}
    info = await client.get("/auth/o2/tokeninfo", params={"access_token": tokens["access_token"]})
    assert_error(info, 400, "invalid_token")
    profile = await client.get("/user/profile", params={"access_token": tokens["access_token"]})
    assert_error(profile, 401, "invalid_token")
    refresh = await client.post(
        "/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": WEB_ID,
            "client_secret": WEB_SECRET,
        },
    )
    assert_error(refresh, 400, "invalid_grant")
    assert "revoked" in refresh.json()["error_description"]
    unknown = await client.post("/_emulator/customers/amzn1.account.NOPE/revoke")
    assert unknown.status_code == 404


async def test_codes_approve_and_deny_validate_input(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    pair = await code_pair(client)
    no_user = await client.post(f"/_emulator/codes/{pair['user_code']}/approve", json={})
    assert no_user.status_code == 422
    unknown_user = await client.post(
        f"/_emulator/codes/{pair['user_code']}/approve", json={"user_id": "amzn1.account.NOPE"}
    )
    assert unknown_user.status_code == 404
    unknown_action = await client.post(f"/_emulator/codes/{pair['user_code']}/maybe")
    assert unknown_action.status_code == 404
    assert_error(await poll(client, pair), 400, "authorization_pending")
    unknown_code = await client.post("/_emulator/codes/AAAAAA1/deny")
    assert unknown_code.status_code == 404


async def test_clock_and_reset(client: httpx.AsyncClient, state: EmulatorState) -> None:
    assert (await client.post("/_emulator/clock", json={"advance_seconds": -5})).status_code == 422
    assert (await client.post("/_emulator/clock", json={})).status_code == 422
    await client.post("/_emulator/clock", json={"advance_seconds": 60})
    await client.post("/_emulator/customers", json={"name": "X", "email": "x@example.com"})
    await client.post("/_emulator/faults", json={"path": "/user/profile", "status": 503})
    await code_pair(client)
    reset = await client.post("/_emulator/reset")
    assert reset.status_code == 200
    assert reset.json()["customers"] == 2
    assert reset.json()["code_pairs"] == 0
    assert state.clock.offset == 0
    assert (await client.get("/_emulator/faults")).json() == []


async def test_unknown_paths_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/auth/o2/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong_method = await client.get("/auth/o2/token")
    assert wrong_method.status_code == 405
