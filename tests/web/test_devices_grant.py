"""Our RFC 8628 shaped device sign-in over ASGI: /device/authorize, /activate, /device/token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lwa_accounts.core.device_grant import USER_CODE_ALPHABET
from tests.tv.harness import DeviceEnv, device_env, device_settings


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[DeviceEnv]:
    async with device_env(device_settings(tmp_path)) as running:
        yield running


async def authorize(env: DeviceEnv, name: str | None = "Living-room TV") -> dict[str, Any]:
    body = {"device_name": name} if name else {}
    response = await env.tv.post("/api/v1/device/authorize", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def token(env: DeviceEnv, device_code: str) -> tuple[int, dict[str, Any]]:
    response = await env.tv.post("/api/v1/device/token", json={"device_code": device_code})
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def approve_on_phone(env: DeviceEnv, user_code: str, decision: str = "approve") -> str:
    """Type the code on the phone (already signed in) and decide. Returns the confirm page."""
    confirm = await env.phone_form("/activate", {"code": user_code.lower().replace("-", " ")})
    assert confirm.status_code == 200, confirm.text
    done = await env.phone_form("/activate/decide", {"code": user_code, "decision": decision})
    assert done.status_code == 200, done.text
    return confirm.text


async def test_authorize_answers_the_rfc8628_shape(env: DeviceEnv) -> None:
    data = await authorize(env)
    assert set(data) >= {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert re.fullmatch(
        f"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}", data["user_code"]
    )
    assert data["verification_uri"] == "http://testserver/activate"
    assert data["verification_uri_complete"].startswith("http://testserver/activate?code=")
    assert 0 < data["expires_in"] <= 900
    assert data["interval"] == 5
    assert len(data["device_code"]) * 6 >= 128
    assert data["qr_svg"].startswith("<svg")


async def test_device_signs_in_after_explicit_approval_on_the_phone(env: DeviceEnv) -> None:
    await env.local_account("ada", "ada@example.org")
    data = await authorize(env)
    status, body = await token(env, data["device_code"])
    assert (status, body["error"]) == (400, "authorization_pending")
    assert set(body) >= {"error", "error_description"}

    await env.phone_sign_in("ada")
    confirm_page = await approve_on_phone(env, data["user_code"])
    # The approval page names the device, where and when it asked (security.md item 17).
    assert "Living-room TV" in confirm_page
    assert "Asked from" in confirm_page
    assert "Asked at" in confirm_page
    assert "Only continue for a screen in front of you" in confirm_page
    assert "Approve" in confirm_page
    assert "Deny" in confirm_page

    await env.advance(5)
    status, body = await token(env, data["device_code"])
    assert status == 200, body
    assert body["result"] == "signed_in"
    assert body["account"]["username"] == "ada"
    me = await env.tv.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {body['session']['token']}"}
    )
    assert me.status_code == 200
    sessions = await env.tv.get(
        "/api/v1/sessions", headers={"Authorization": f"Bearer {body['session']['token']}"}
    )
    current = [s for s in sessions.json()["sessions"] if s["current"]]
    assert current[0]["kind"] == "device"
    assert current[0]["device_name"] == "Living-room TV"

    # Single use: the same device code never gives a second session.
    await env.advance(5)
    status, body = await token(env, data["device_code"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_sec17_opening_the_link_or_qr_url_approves_nothing(env: DeviceEnv) -> None:
    await env.local_account("ada", "ada@example.org")
    await env.phone_sign_in("ada")
    data = await authorize(env)
    page = await env.phone.get(data["verification_uri_complete"])
    assert page.status_code == 200
    # The code is pre-filled, but nothing was looked up or approved.
    assert data["user_code"] in page.text
    assert "Living-room TV" not in page.text
    # Typing the code only shows the confirmation; still nothing approved.
    shown = await env.phone_form("/activate", {"code": data["user_code"]})
    assert "Sign in on Living-room TV?" in shown.text
    await env.advance(5)
    status, body = await token(env, data["device_code"])
    assert (status, body["error"]) == (400, "authorization_pending")


async def test_sec17_approval_needs_a_signed_in_phone(env: DeviceEnv) -> None:
    data = await authorize(env)
    page = await env.phone_form("/activate", {"code": data["user_code"]})
    assert page.status_code == 200
    assert "Sign in to continue" in page.text
    assert "/signin?next=" in page.text
    # Posting a decision without a session does nothing.
    refused = await env.phone_form(
        "/activate/decide", {"code": data["user_code"], "decision": "approve"}
    )
    assert refused.status_code == 400
    await env.advance(5)
    _status, body = await token(env, data["device_code"])
    assert body["error"] == "authorization_pending"


async def test_denied_on_the_phone_gives_access_denied(env: DeviceEnv) -> None:
    await env.local_account("ada", "ada@example.org")
    await env.phone_sign_in("ada")
    data = await authorize(env)
    await approve_on_phone(env, data["user_code"], decision="deny")
    status, body = await token(env, data["device_code"])
    assert (status, body["error"]) == (400, "access_denied")


async def test_sec16_polling_too_fast_gets_slow_down(env: DeviceEnv) -> None:
    data = await authorize(env)
    assert (await token(env, data["device_code"]))[1]["error"] == "authorization_pending"
    await env.advance(2)
    status, body = await token(env, data["device_code"])
    assert (status, body["error"], body["interval"]) == (400, "slow_down", 10)
    await env.advance(9)
    assert (await token(env, data["device_code"]))[1]["error"] == "slow_down"
    await env.advance(15)
    assert (await token(env, data["device_code"]))[1]["error"] == "authorization_pending"


async def test_sec15_codes_expire_and_cannot_be_approved_late(env: DeviceEnv) -> None:
    await env.local_account("ada", "ada@example.org")
    await env.phone_sign_in("ada")
    data = await authorize(env)
    await env.advance(data["expires_in"])
    status, body = await token(env, data["device_code"])
    assert (status, body["error"]) == (400, "expired_token")
    late = await env.phone_form("/activate", {"code": data["user_code"]})
    assert late.status_code == 400
    assert "not valid or has expired" in late.text


async def test_sec16_codes_are_stored_only_hashed(env: DeviceEnv) -> None:
    data = await authorize(env)
    engine = env.app.state.services.database.engine
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM device_grants"))).all()
    dump = repr(rows)
    assert data["device_code"] not in dump
    assert data["user_code"].replace("-", "") not in dump
    assert data["user_code"] not in dump


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"device_code": ""},
        {"device_code": 5},
        {"device_code": ["x"]},
        {"device_code": "x" * 300},
        [],
        "not json",
    ],
)
async def test_bad_token_requests_get_invalid_request(env: DeviceEnv, body: object) -> None:
    if isinstance(body, str):
        response = await env.tv.post(
            "/api/v1/device/token", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = await env.tv.post("/api/v1/device/token", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_unknown_device_code_is_invalid_grant_and_form_bodies_work(env: DeviceEnv) -> None:
    response = await env.tv.post("/api/v1/device/token", data={"device_code": "nope"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "body", [{"device_name": 5}, {"device_name": ""}, {"device_name": "x" * 101}, {"other": 1}]
)
async def test_bad_authorize_bodies_get_422_and_create_nothing(
    env: DeviceEnv, body: dict[str, Any]
) -> None:
    response = await env.tv.post("/api/v1/device/authorize", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    engine = env.app.state.services.database.engine
    async with engine.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM device_grants"))).scalar()
    assert count == 0


async def test_device_name_is_cleaned_of_control_characters(env: DeviceEnv) -> None:
    await env.local_account("ada", "ada@example.org")
    await env.phone_sign_in("ada")
    data = await authorize(env, "Bad\u202e\x07TV")
    page = await env.phone_form("/activate", {"code": data["user_code"]})
    assert "BadTV" in page.text


async def test_sec15_code_entry_is_rate_limited_per_ip(tmp_path: Path) -> None:
    settings = device_settings(tmp_path, user_code_limit_per_ip="3/10minutes")
    async with device_env(settings) as env:
        for _ in range(3):
            wrong = await env.phone_form("/activate", {"code": "BCDF-GHJK"})
            assert wrong.status_code == 400
        data = await authorize(env)
        blocked = await env.phone_form("/activate", {"code": data["user_code"]})
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 0


async def test_sec15_code_entry_is_rate_limited_per_code(tmp_path: Path) -> None:
    settings = device_settings(tmp_path, user_code_limit_per_code="2/10minutes")
    async with device_env(settings) as env:
        data = await authorize(env)
        for _ in range(2):
            assert (
                await env.phone_form("/activate", {"code": data["user_code"]})
            ).status_code == 200
        blocked = await env.phone_form("/activate", {"code": data["user_code"].lower()})
        assert blocked.status_code == 429


async def test_activate_form_needs_csrf(env: DeviceEnv) -> None:
    data = await authorize(env)
    response = await env.phone.post("/activate", data={"code": data["user_code"]})
    assert response.status_code == 403


async def test_starting_device_sign_ins_is_rate_limited_per_ip(tmp_path: Path) -> None:
    settings = device_settings(tmp_path, device_start_limit_per_ip="2/10minutes")
    async with device_env(settings) as env:
        assert (await env.tv.post("/api/v1/device/authorize", json={})).status_code == 201
        amazon = await env.tv.post("/api/v1/amazon/device-authorizations", json={})
        assert amazon.status_code == 201
        blocked = await env.tv.post("/api/v1/amazon/device-authorizations", json={})
        assert blocked.status_code == 429
        assert blocked.json()["code"] == "too_many_attempts"
        # Refused before Amazon was asked.
        assert env.amazon_transport.calls["/auth/o2/create/codepair"] == 1
