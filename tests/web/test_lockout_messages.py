"""Every refusal for too many attempts says how long to wait, in words, where the person
is: /signin, the Amazon link page, the phone's /activate (its code and its link step),
and the JSON API (problem+json ``retry_after`` plus ``Retry-After``). One sentence, made
once (``errors.TooManyAttempts`` over ``core/waits.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from lwa_accounts.core.waits import try_again_in
from tests.e2e.amazon_harness import (
    confirm_email,
    e2e_settings,
    register_password_account,
    running,
)
from tests.tv.harness import DeviceEnv, device_env, device_settings
from tests.web.test_amazon_pages import form_fields, through_amazon

# One wrong password per account and address, then 429 for 15 minutes.
TIGHT = {"password_limit_per_account_ip": "1/15minutes"}
AMAZON_INTERVAL = 30


def says_the_wait(response: httpx.Response) -> str:
    """The sentence the response must carry, from its own Retry-After."""
    assert response.status_code == 429, response.text
    wait = int(response.headers["retry-after"])
    assert 14 * 60 < wait <= 15 * 60
    sentence = try_again_in(wait)
    assert sentence == "Too many attempts. Try again in 15 minutes."
    return sentence


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[DeviceEnv]:
    async with device_env(device_settings(tmp_path, **TIGHT)) as running_env:
        yield running_env


async def test_the_amazon_link_page_says_the_wait(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path, **TIGHT)) as (app, client):
        await register_password_account(client)
        await confirm_email(app)  # only a confirmed address is a link step's target
        landed = await through_amazon(client, await client.get("/auth/amazon/start?next=/account"))
        assert landed.headers["location"] == "/auth/amazon/link"
        fields = form_fields((await client.get("/auth/amazon/link")).text, "/auth/amazon/link")
        wrong = await client.post("/auth/amazon/link", data=fields | {"password": "wrong-pass1"})
        assert wrong.status_code == 401
        fields = form_fields((await client.get("/auth/amazon/link")).text, "/auth/amazon/link")
        refused = await client.post("/auth/amazon/link", data=fields | {"password": "wrong-pass2"})
        assert says_the_wait(refused) in refused.text


async def test_the_api_link_step_says_the_wait(env: DeviceEnv) -> None:
    await env.local_account("grace", "grace@example.net")
    user_id = await env.add_customer("Grace H", "grace@example.net")
    minted = await env.amazon.post(
        "/_emulator/tokens", json={"user_id": user_id, "client_id": env.settings.device_client_id}
    )
    outcome = await env.tv.post(
        "/api/v1/sessions/amazon", json={"access_token": minted.json()["access_token"]}
    )
    flow_id = outcome.json()["flow"]["id"]
    for status in (401, 429):
        answer = await env.tv.post(
            "/api/v1/flows/link", json={"flow_id": flow_id, "password": "wrong-pass1"}
        )
        assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["detail"] == says_the_wait(answer)
    assert problem["retry_after"] == int(answer.headers["retry-after"])


async def test_the_phones_activate_link_step_says_the_wait(env: DeviceEnv) -> None:
    await env.local_account("grace", "grace@example.net")
    user_id = await env.add_customer("Grace H", "grace@example.net")
    start = await env.tv.post("/api/v1/amazon/device-authorizations", json={})
    auth = start.json()
    await env.decide_at_amazon(auth["user_code"], user_id)
    await env.advance(AMAZON_INTERVAL)
    polled = await env.tv.post(
        "/api/v1/amazon/device-authorizations/poll", json={"authorization_id": auth["id"]}
    )
    code = polled.json()["handoff"]["code"]
    proven = await env.phone_proves_amazon(code, "grace@example.net")
    assert proven.headers["location"] == "/activate/link"
    wrong = await env.phone_form("/activate/link", {"code": code, "password": "wrong-pass1"})
    assert wrong.status_code == 401
    refused = await env.phone_form("/activate/link", {"code": code, "password": "wrong-pass2"})
    assert says_the_wait(refused) in refused.text


async def test_the_activate_code_entry_says_the_wait(tmp_path: Path) -> None:
    settings = device_settings(tmp_path, user_code_limit_per_ip="1/10minutes")
    async with device_env(settings) as env:
        await env.phone_sign_in((await env.local_account("grace", "g@example.net"))["username"])
        first = await env.phone_form("/activate", {"code": "BCDFGHJK"})
        assert first.status_code in (400, 404), first.text
        refused = await env.phone_form("/activate", {"code": "BCDFGHJK"})
        assert refused.status_code == 429, refused.text
        wait = int(refused.headers["retry-after"])
        assert 9 * 60 < wait <= 10 * 60
        assert "Too many attempts. Try again in 10 minutes." in refused.text
