"""The "prove your local password" link step runs argon2 outside any transaction.

On every edge that links with a password (/auth/amazon/link, /activate/link and
POST /api/v1/flows/link) the password is verified while no SQLite write lock is held;
the step is finished in a second transaction that re-checks the flow and the password.
Each test hooks the hasher: while it verifies, it records whether the write lock is held
and can run another transaction (which would wait for itself if the lock were held).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from lwa_accounts.flows.amazon import hash_secret
from lwa_accounts.interfaces import Stores
from lwa_accounts.store.db import Database
from lwa_accounts.web.services import Services
from tests.e2e.amazon_harness import (
    confirm_email,
    e2e_settings,
    register_password_account,
    running,
)
from tests.tv.harness import PASSWORD, DeviceEnv, device_env, device_settings
from tests.web.test_amazon_pages import form_fields, through_amazon

AMAZON_INTERVAL = 30
Meanwhile = Callable[[Stores], Awaitable[None]]


class Spy:
    """Wraps the app's hasher.verify: records the lock state, runs ``meanwhile`` once."""

    def __init__(self, app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
        services: Services = app.state.services
        self.database: Database = services.database
        self.locked: list[bool] = []
        self.meanwhile: Meanwhile | None = None
        hasher = services.deps.hasher
        real_verify = hasher.verify

        async def verify(password_hash: str, password: str) -> bool:
            writer = self.database._sqlite_writer
            self.locked.append(writer is not None and writer.locked())
            if self.meanwhile is not None:
                action, self.meanwhile = self.meanwhile, None
                async with self.database.transaction() as stores:
                    await action(stores)
            return await real_verify(password_hash, password)

        monkeypatch.setattr(hasher, "verify", verify)


def _change_password_of(account_id: str) -> Meanwhile:
    async def change(stores: Stores) -> None:  # e.g. a password change in another tab
        await stores.accounts.update(account_id, password_hash="$argon2id$changed-meanwhile")

    return change


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[DeviceEnv]:
    async with device_env(device_settings(tmp_path)) as running_env:
        yield running_env


async def _api_link_flow(env: DeviceEnv) -> tuple[dict[str, Any], str]:
    local = await env.local_account("grace", "grace@example.net")
    user_id = await env.add_customer("Grace H", "grace@example.net")
    minted = await env.amazon.post(
        "/_emulator/tokens", json={"user_id": user_id, "client_id": env.settings.device_client_id}
    )
    outcome = await env.tv.post(
        "/api/v1/sessions/amazon", json={"access_token": minted.json()["access_token"]}
    )
    assert outcome.json()["result"] == "link_required", outcome.text
    return local, outcome.json()["flow"]["id"]


async def test_api_link_verifies_outside_the_transaction(
    env: DeviceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, flow_id = await _api_link_flow(env)
    spy = Spy(env.app, monkeypatch)
    wrong = await env.tv.post(
        "/api/v1/flows/link", json={"flow_id": flow_id, "password": "wrong-pass1"}
    )
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_credentials")
    assert wrong.json()["attempts_left"] >= 1
    right = await env.tv.post("/api/v1/flows/link", json={"flow_id": flow_id, "password": PASSWORD})
    assert right.status_code == 201, right.text
    assert right.json()["account"]["id"] == local["id"]
    assert spy.locked == [False, False]


async def test_api_link_refused_when_the_password_changed_meanwhile(
    env: DeviceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, flow_id = await _api_link_flow(env)
    spy = Spy(env.app, monkeypatch)
    spy.meanwhile = _change_password_of(local["id"])
    response = await env.tv.post(
        "/api/v1/flows/link", json={"flow_id": flow_id, "password": PASSWORD}
    )
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")
    async with spy.database.transaction() as stores:
        assert await stores.identities.get_for_account(local["id"]) is None
    pending = await env.tv.post("/api/v1/flows/poll", json={"flow_id": flow_id})
    assert (pending.status_code, pending.json()["result"]) == (200, "pending")


async def test_api_link_refused_when_the_flow_was_used_meanwhile(
    env: DeviceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, flow_id = await _api_link_flow(env)
    spy = Spy(env.app, monkeypatch)

    async def spend(stores: Stores) -> None:  # another request finished the flow first
        assert await stores.pending_flows.transition(
            hash_secret(flow_id), from_status="pending", to_status="spent"
        )

    spy.meanwhile = spend
    response = await env.tv.post(
        "/api/v1/flows/link", json={"flow_id": flow_id, "password": PASSWORD}
    )
    assert (response.status_code, response.json()["code"]) == (410, "flow_expired")
    async with spy.database.transaction() as stores:
        assert await stores.identities.get_for_account(local["id"]) is None


async def test_activate_link_verifies_outside_the_transaction(
    env: DeviceEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = await env.local_account("grace", "grace@example.net")
    user_id = await env.add_customer("Grace H", "grace@example.net")
    start = await env.tv.post("/api/v1/amazon/device-authorizations", json={})
    auth = start.json()
    await env.decide_at_amazon(auth["user_code"], user_id)
    await env.advance(AMAZON_INTERVAL)
    polled = await env.tv.post(
        "/api/v1/amazon/device-authorizations/poll", json={"authorization_id": auth["id"]}
    )
    body = polled.json()
    assert body["result"] == "link_required", body
    code = body["handoff"]["code"]
    proven = await env.phone_proves_amazon(code, "grace@example.net")
    assert proven.headers["location"] == "/activate/link"
    spy = Spy(env.app, monkeypatch)
    spy.meanwhile = _change_password_of(local["id"])
    changed = await env.phone_form("/activate/link", {"code": code, "password": PASSWORD})
    assert changed.status_code == 401  # checked against a password that is no longer the one
    async with spy.database.transaction() as stores:  # put the real password back
        await stores.accounts.update(
            local["id"], password_hash=await env.app.state.services.deps.hasher.hash(PASSWORD)
        )
    wrong = await env.phone_form("/activate/link", {"code": code, "password": "wrong-pass1"})
    assert wrong.status_code == 401
    done = await env.phone_form("/activate/link", {"code": code, "password": PASSWORD})
    assert done.status_code == 200, done.text
    assert "Linked" in done.text
    assert spy.locked == [False, False, False]
    collected = await env.tv.post("/api/v1/flows/poll", json={"flow_id": body["flow"]["id"]})
    assert collected.status_code == 201
    assert collected.json()["account"]["id"] == local["id"]


async def test_link_page_verifies_outside_the_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client):
        await register_password_account(client)
        await confirm_email(app)
        landed = await through_amazon(client, await client.get("/auth/amazon/start?next=/account"))
        assert landed.headers["location"] == "/auth/amazon/link"
        page = await client.get("/auth/amazon/link")
        fields = form_fields(page.text, "/auth/amazon/link")
        spy = Spy(app, monkeypatch)
        wrong = await client.post("/auth/amazon/link", data=fields | {"password": "wrong-pass1"})
        assert wrong.status_code == 401
        right = await client.post("/auth/amazon/link", data=fields | {"password": PASSWORD})
        assert right.status_code == 303, right.text
        assert right.headers["location"] == "/account"
        assert spy.locked == [False, False]
