"""security.md item 19: a new session id at re-authentication.

Re-entering the password on /account (change password, link Amazon, unlink Amazon) ends
the browser's session and starts a new one: the old cookie stops working, the new one
works. Bearer (device) callers of the API keep their token (flows/accounts.reauthenticate).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from lwa_accounts.flows.audit import Event
from tests.e2e.amazon_harness import (
    BASE_URL,
    PASSWORD,
    database_of,
    e2e_settings,
    mint,
    register_password_account,
    running,
)
from tests.web.test_amazon_pages import form_fields, through_amazon

COOKIE = "lwa_session"
NEW_PASSWORD = "marmalade-giraffe-77"


@asynccontextmanager
async def _signed_in(
    tmp_path: Path, **overrides: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running(e2e_settings(tmp_path, **overrides)) as (app, client):
        await register_password_account(client)
        signin = await client.get("/signin")
        fields = form_fields(signin.text, "/signin") | {"username": "ada", "password": PASSWORD}
        assert (await client.post("/signin", data=fields)).status_code == 303
        yield app, client


async def _cookie_works(app: FastAPI, token: str | None) -> bool:
    """Whether a browser holding only this session cookie is signed in."""
    assert token
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, cookies={COOKIE: token}
    ) as browser:
        page = await browser.get("/account")
    return page.status_code == 200


async def _rotation_events(app: FastAPI) -> list[str]:
    async with database_of(app).transaction() as stores:
        events = await stores.audit.list(limit=50)
    return [
        f"{e.kind} {e.detail}"
        for e in events
        if e.kind in (Event.REAUTHENTICATED, Event.SESSION_STARTED)
    ]


async def test_change_password_rotates_the_session(tmp_path: Path) -> None:
    async with _signed_in(tmp_path) as (app, client):
        old = client.cookies.get(COOKIE)
        page = await client.get("/account")
        fields = form_fields(page.text, "/account/password") | {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        }
        changed = await client.post("/account/password", data=fields)
        assert changed.status_code == 303
        new = client.cookies.get(COOKIE)
        assert new not in (None, old)
        assert not await _cookie_works(app, old)
        assert await _cookie_works(app, new)
        assert "Your password was changed" in (await client.get(changed.headers["location"])).text
        assert any("method=password_change" in e for e in await _rotation_events(app))


async def test_wrong_current_password_keeps_the_session(tmp_path: Path) -> None:
    async with _signed_in(tmp_path) as (app, client):
        old = client.cookies.get(COOKIE)
        page = await client.get("/account")
        fields = form_fields(page.text, "/account/password") | {
            "current_password": "not-my-password",
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        }
        assert (await client.post("/account/password", data=fields)).status_code == 401
        assert client.cookies.get(COOKIE) == old
        assert await _cookie_works(app, old)


async def test_password_for_linking_amazon_rotates_the_session(tmp_path: Path) -> None:
    async with _signed_in(tmp_path) as (app, client):
        old = client.cookies.get(COOKIE)
        page = await client.get("/account")
        link_form = form_fields(page.text, "/account/amazon/link") | {"password": PASSWORD}
        start = await client.post("/account/amazon/link", data=link_form)
        assert start.status_code == 303
        assert "/_amazon/ap/oa?" in start.headers["location"]  # straight to Amazon
        new = client.cookies.get(COOKIE)
        assert new not in (None, old)
        assert not await _cookie_works(app, old)
        assert await _cookie_works(app, new)
        # The new session counts as freshly authenticated (and is the one the trip is
        # bound to): linking goes through.
        landed = await through_amazon(client, start)
        assert landed.headers["location"] == "/account?amazon=linked"
        events = await _rotation_events(app)
        assert any(e.startswith(Event.REAUTHENTICATED) and "replaces=" in e for e in events)


async def test_wrong_password_for_linking_keeps_the_session(tmp_path: Path) -> None:
    async with _signed_in(tmp_path) as (app, client):
        old = client.cookies.get(COOKIE)
        page = await client.get("/account")
        link_form = form_fields(page.text, "/account/amazon/link") | {"password": "nope12345"}
        refused = await client.post("/account/amazon/link", data=link_form)
        assert refused.headers["location"] == "/account?amazon_error=wrong-password"
        assert client.cookies.get(COOKIE) == old
        assert await _cookie_works(app, old)


async def test_password_for_unlinking_rotates_the_session(tmp_path: Path) -> None:
    async with _signed_in(tmp_path) as (app, client):
        page = await client.get("/account")
        link_form = form_fields(page.text, "/account/amazon/link")
        start = await client.post("/account/amazon/link", data=link_form)  # recent sign-in
        await through_amazon(client, start)
        old = client.cookies.get(COOKIE)
        page = await client.get("/account?amazon=linked")
        unlink = form_fields(page.text, "/account/amazon/unlink") | {"password": PASSWORD}
        done = await client.post("/account/amazon/unlink", data=unlink)
        assert done.headers["location"] == "/account?amazon=unlinked"
        new = client.cookies.get(COOKIE)
        assert new not in (None, old)
        assert not await _cookie_works(app, old)
        assert await _cookie_works(app, new)
        assert "Link Amazon account" in (await client.get("/account")).text


@pytest.mark.parametrize("method", ["attach", "detach"])
async def test_bearer_reauthentication_keeps_the_token(tmp_path: Path, method: str) -> None:
    async with running(e2e_settings(tmp_path)) as (_app, client):
        await register_password_account(client)
        signed_in = await client.post(
            "/api/v1/sessions", json={"username": "ada", "password": PASSWORD}
        )
        bearer = {"Authorization": f"Bearer {signed_in.json()['session']['token']}"}
        attach = await client.post(
            "/api/v1/me/amazon",
            json={"access_token": await mint(client), "password": PASSWORD},
            headers=bearer,
        )
        assert attach.status_code == 200, attach.text
        if method == "detach":
            detach = await client.request(
                "DELETE", "/api/v1/me/amazon", json={"password": PASSWORD}, headers=bearer
            )
            assert detach.status_code == 204, detach.text
        assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200


async def test_change_password_hashes_outside_the_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _signed_in(tmp_path) as (app, client):
        database = database_of(app)
        hasher = app.state.services.deps.hasher
        locked: list[tuple[str, bool]] = []
        real_verify, real_hash = hasher.verify, hasher.hash

        def writer_locked() -> bool:
            writer = database._sqlite_writer
            return writer is not None and writer.locked()

        async def verify(password_hash: str, password: str) -> bool:
            locked.append(("verify", writer_locked()))
            result: bool = await real_verify(password_hash, password)
            return result

        async def hash_(password: str) -> str:
            locked.append(("hash", writer_locked()))
            result: str = await real_hash(password)
            return result

        monkeypatch.setattr(hasher, "verify", verify)
        monkeypatch.setattr(hasher, "hash", hash_)
        page = await client.get("/account")
        fields = form_fields(page.text, "/account/password") | {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        }
        assert (await client.post("/account/password", data=fields)).status_code == 303
        assert locked == [("verify", False), ("hash", False)]
        signin = await client.get("/signin")
        again = form_fields(signin.text, "/signin") | {"username": "ada", "password": NEW_PASSWORD}
        assert (await client.post("/signin", data=again)).status_code == 303
