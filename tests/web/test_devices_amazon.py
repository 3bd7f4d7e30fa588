"""Server-assisted code-based linking and "finish on your phone", over ASGI with the
emulated Amazon as the app's Amazon transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lwa_accounts.core.device_grant import parse_user_code
from tests.tv.harness import PASSWORD, DeviceEnv, device_env, device_settings

AMAZON_INTERVAL = 30  # the emulator's (and Amazon's) interval


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[DeviceEnv]:
    async with device_env(device_settings(tmp_path)) as running:
        yield running


async def start(env: DeviceEnv, name: str = "Living-room TV") -> dict[str, Any]:
    response = await env.tv.post("/api/v1/amazon/device-authorizations", json={"device_name": name})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def poll(env: DeviceEnv, auth: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await env.tv.post(
        "/api/v1/amazon/device-authorizations/poll", json={"authorization_id": auth["id"]}
    )
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def approve_and_collect(
    env: DeviceEnv, auth: dict[str, Any], user_id: str
) -> tuple[int, dict[str, Any]]:
    await env.decide_at_amazon(auth["user_code"], user_id)
    await env.advance(AMAZON_INTERVAL)
    return await poll(env, auth)


async def test_start_answers_the_contract_and_keeps_amazons_device_code(env: DeviceEnv) -> None:
    data = await start(env)
    assert set(data) >= {"id", "user_code", "verification_uri", "expires_in", "interval"}
    assert "device_code" not in data
    assert data["verification_uri"] == "http://amazon.test/code"
    assert data["interval"] == 5
    assert 0 < data["expires_in"] <= 600
    assert data["qr_svg"].startswith("<svg")
    assert env.amazon_transport.calls["/auth/o2/create/codepair"] == 1


async def test_new_user_signs_in_on_the_tv(env: DeviceEnv) -> None:
    user_id = await env.add_customer("Tess Tv", "tess@example.net")
    auth = await start(env)
    assert await poll(env, auth) == (200, {"result": "pending"})
    status, body = await approve_and_collect(env, auth, user_id)
    assert status == 201, body
    assert body["result"] == "signed_in"
    assert body["created"] is True
    assert body["account"]["name"] == "Tess Tv"
    assert body["account"]["amazon_user_id"] == user_id
    token = body["session"]["token"]
    sessions = await env.tv.get("/api/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    current = next(s for s in sessions.json()["sessions"] if s["current"])
    assert (current["kind"], current["device_name"]) == ("device", "Living-room TV")

    # The pair is spent: Amazon's device code is forgotten, a late poll gets 410.
    engine = env.app.state.services.database.engine
    async with engine.connect() as connection:
        codes = (
            await connection.execute(text("SELECT device_code FROM amazon_device_authorizations"))
        ).all()
    assert codes == [(None,)]
    await env.advance(5)
    status, body = await poll(env, auth)
    assert (status, body["code"]) == (410, "expired")


async def test_returning_user_gets_the_same_account(env: DeviceEnv) -> None:
    user_id = await env.add_customer("Tess Tv", "tess@example.net")
    first = await approve_and_collect(env, await start(env), user_id)
    second = await approve_and_collect(env, await start(env), user_id)
    assert first[0] == second[0] == 201
    assert second[1]["created"] is False
    assert second[1]["account"]["id"] == first[1]["account"]["id"]
    assert second[1]["session"]["token"] != first[1]["session"]["token"]


async def test_server_asks_amazon_at_most_once_per_amazon_interval(env: DeviceEnv) -> None:
    auth = await start(env)
    for _ in range(12):  # one minute of polls every 5 s
        assert await poll(env, auth) == (200, {"result": "pending"})
        await env.advance(5)
    # t = 0, 30 (and not 60: the loop stops at 55).
    assert env.amazon_token_polls == 2


async def test_sec16_device_polling_too_fast_gets_429_slow_down(env: DeviceEnv) -> None:
    auth = await start(env)
    assert (await poll(env, auth))[0] == 200
    await env.advance(1)
    status, body = await poll(env, auth)
    assert (status, body["code"], body["interval"]) == (429, "slow_down", 10)
    response = await env.tv.post(
        "/api/v1/amazon/device-authorizations/poll", json={"authorization_id": auth["id"]}
    )
    assert int(response.headers["Retry-After"]) >= 10
    await env.advance(15)
    assert (await poll(env, auth))[0] == 200


async def test_expired_code_gets_410(env: DeviceEnv) -> None:
    auth = await start(env)
    await env.advance(auth["expires_in"] + 1)
    status, body = await poll(env, auth)
    assert (status, body["code"]) == (410, "expired")


async def test_amazon_expiring_the_pair_first_gets_410(env: DeviceEnv) -> None:
    auth = await start(env)
    # Only Amazon's clock moves: Amazon answers invalid_code_pair.
    await env.amazon.post("/_emulator/clock", json={"advance_seconds": 700})
    status, body = await poll(env, auth)
    assert (status, body["code"]) == (410, "expired")


async def test_denied_at_amazon_gets_403_access_denied(env: DeviceEnv) -> None:
    auth = await start(env)
    await env.decide_at_amazon(auth["user_code"], None)
    await env.advance(AMAZON_INTERVAL)
    status, body = await poll(env, auth)
    assert (status, body["code"]) == (403, "access_denied")


async def test_unknown_authorization_is_404(env: DeviceEnv) -> None:
    for handle, status in (("nope", 404), ("%00", 404), ("\x00", 404), ("x" * 150, 422)):
        response = await env.tv.post(
            "/api/v1/amazon/device-authorizations/poll", json={"authorization_id": handle}
        )
        assert response.status_code == status, handle
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_sec01_retired_poll_path_answers_410_moved_without_polling(env: DeviceEnv) -> None:
    user_id = await env.add_customer("Olive Old", "olive@example.net")
    auth = await start(env)
    await env.decide_at_amazon(auth["user_code"], user_id)
    await env.advance(AMAZON_INTERVAL)
    old = await env.tv.post(f"/api/v1/amazon/device-authorizations/{auth['id']}/poll")
    assert old.status_code == 410
    assert old.json()["code"] == "moved"
    assert old.json()["moved_to"] == "/api/v1/amazon/device-authorizations/poll"
    # The authorization was not touched: the new endpoint still signs the TV in.
    status, body = await poll(env, auth)
    assert status == 201, body


async def test_amazon_down_is_503_and_the_next_poll_recovers(env: DeviceEnv) -> None:
    user_id = await env.add_customer("Tess Tv", "tess@example.net")
    auth = await start(env)
    await env.amazon.post("/_emulator/faults", json={"path": "/auth/o2/token", "status": 503})
    status, body = await poll(env, auth)
    assert (status, body["code"]) == (503, "amazon_unavailable")
    await env.amazon.delete("/_emulator/faults")
    status, body = await approve_and_collect(env, auth, user_id)
    assert status == 201, body


async def test_amazon_down_when_asking_for_a_code_is_503(env: DeviceEnv) -> None:
    await env.amazon.post(
        "/_emulator/faults", json={"path": "/auth/o2/create/codepair", "status": 500}
    )
    response = await env.tv.post("/api/v1/amazon/device-authorizations", json={})
    assert response.status_code == 503
    assert "Retry-After" in response.headers


# ---- finish on your phone ---------------------------------------------------------------------


async def test_link_is_finished_on_the_phone_without_typing_on_the_tv(env: DeviceEnv) -> None:
    local = await env.local_account("grace", "grace@example.net")
    user_id = await env.add_customer("Grace H", "grace@example.net")
    auth = await start(env)
    status, body = await approve_and_collect(env, auth, user_id)
    assert (status, body["result"]) == (200, "link_required")
    flow_id = body["flow"]["id"]
    handoff = body["handoff"]
    code = handoff["code"]
    assert parse_user_code(code) is not None
    assert handoff["url"] == f"http://testserver/activate?code={code}"
    assert handoff["qr_svg"].startswith("<svg")

    # The TV waits on its flow.
    pending = await env.tv.post("/api/v1/flows/poll", json={"flow_id": flow_id})
    assert (pending.status_code, pending.json()["result"]) == (200, "pending")

    # On the phone: open the QR's URL (pre-fills only), type the code, sign in with the
    # same Amazon account as the TV (security.md item 14b), then give the password.
    opened = await env.phone.get(handoff["url"])
    assert code in opened.text
    page = await env.phone_form("/activate", {"code": code})
    assert page.status_code == 200
    assert "grace@example.net" in page.text
    assert "Living-room TV" in page.text
    assert "Only continue for a screen in front of you" in page.text
    assert 'action="/activate/amazon"' in page.text
    assert 'name="password"' not in page.text
    proven = await env.phone_proves_amazon(code, "grace@example.net")
    assert (proven.status_code, proven.headers["location"]) == (303, "/activate/link"), proven.text
    step2 = await env.phone.get("/activate/link")
    assert step2.status_code == 200
    assert 'name="password"' in step2.text
    wrong = await env.phone_form("/activate/link", {"code": code, "password": "wrong-password"})
    assert wrong.status_code == 401
    done = await env.phone_form("/activate/link", {"code": code, "password": PASSWORD})
    assert done.status_code == 200, done.text
    assert "Linked" in done.text

    collected = await env.tv.post("/api/v1/flows/poll", json={"flow_id": flow_id})
    assert collected.status_code == 201, collected.text
    signed_in = collected.json()
    assert signed_in["account"]["id"] == local["id"]
    assert signed_in["account"]["amazon_user_id"] == user_id
    # Exactly once.
    assert (await env.tv.post("/api/v1/flows/poll", json={"flow_id": flow_id})).status_code == 410
    # The hand-off code is spent too.
    again = await env.phone_form("/activate", {"code": code})
    assert again.status_code == 400


async def test_registration_is_finished_on_the_phone(tmp_path: Path) -> None:
    async with device_env(device_settings(tmp_path, amazon_signup="form")) as env:
        user_id = await env.add_customer("Reg Istrant", "reg@example.net")
        auth = await start(env)
        status, body = await approve_and_collect(env, auth, user_id)
        assert (status, body["result"]) == (200, "registration_required")
        code = body["handoff"]["code"]
        form = await env.phone_form("/activate", {"code": code})
        assert form.status_code == 200
        assert 'value="reg@example.net"' in form.text
        bad = await env.phone_form(
            "/activate/register",
            {"code": code, "username": "x", "name": "Reg Istrant", "email": "reg@example.net"},
        )
        assert bad.status_code == 422
        assert "username-error" in bad.text
        done = await env.phone_form(
            "/activate/register",
            {"code": code, "username": "reg", "name": "Reg Istrant", "email": "reg@example.net"},
        )
        assert done.status_code == 200, done.text
        collected = await env.tv.post("/api/v1/flows/poll", json={"flow_id": body["flow"]["id"]})
        assert collected.status_code == 201, collected.text
        assert collected.json()["account"]["username"] == "reg"
        assert collected.json()["created"] is True


async def test_handoff_endpoint_for_devices_that_ran_amazons_flow(env: DeviceEnv) -> None:
    await env.local_account("grace", "grace@example.net")
    user_id = await env.add_customer("Grace H", "grace@example.net")
    minted = await env.amazon.post(
        "/_emulator/tokens",
        json={"user_id": user_id, "client_id": env.settings.device_client_id},
    )
    access_token = minted.json()["access_token"]
    outcome = await env.tv.post(
        "/api/v1/sessions/amazon", json={"access_token": access_token, "device_name": "Stick"}
    )
    assert outcome.json()["result"] == "link_required", outcome.text
    flow_id = outcome.json()["flow"]["id"]
    first = await env.tv.post("/api/v1/flows/handoff", json={"flow_id": flow_id})
    assert first.status_code == 201, first.text
    second = await env.tv.post("/api/v1/flows/handoff", json={"flow_id": flow_id})
    # A new code replaces the old one.
    assert (await env.phone_form("/activate", {"code": first.json()["code"]})).status_code == 400
    page = await env.phone_form("/activate", {"code": second.json()["code"]})
    assert page.status_code == 200
    assert "Stick" in page.text
    unknown = await env.tv.post("/api/v1/flows/handoff", json={"flow_id": "flw_unknown"})
    assert unknown.status_code == 404


async def test_sec18_a_revoked_tv_gets_401_at_its_next_call(env: DeviceEnv) -> None:
    user_id = await env.add_customer("Tess Tv", "tess@example.net")
    _, body = await approve_and_collect(env, await start(env), user_id)
    tv_token = body["session"]["token"]
    # The person, signed in elsewhere with another device session, revokes the TV.
    _, other = await approve_and_collect(env, await start(env, "Phone app"), user_id)
    other_auth = {"Authorization": f"Bearer {other['session']['token']}"}
    listed = await env.tv.get("/api/v1/sessions", headers=other_auth)
    tv_session = next(s for s in listed.json()["sessions"] if s["device_name"] == "Living-room TV")
    assert tv_session["last_seen_at"]
    revoked = await env.tv.delete(f"/api/v1/sessions/{tv_session['id']}", headers=other_auth)
    assert revoked.status_code == 204
    me = await env.tv.get("/api/v1/me", headers={"Authorization": f"Bearer {tv_token}"})
    assert me.status_code == 401
