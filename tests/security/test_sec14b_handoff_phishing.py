"""Remote phishing of "finish on your phone" (issue 9 hole 2, security.md item 14b).

The attack: an attacker whose Amazon account carries the victim's email signs in with it
on their own TV, gets ``link_required`` (an account here holds that email), asks for a
hand-off code and sends the victim ``/activate?code=...``. If the victim's password typed on
the victim's phone were enough, the attacker's TV would collect a session on the victim's
account and the attacker's Amazon identity would stay linked to it for good.

The rule: a link is made only where one browser proved both the local password and the
Amazon identity. Played over HTTP against the whole app (ASGI, embedded emulated Amazon,
real form posts with CSRF tokens): the attacker's TV speaks the JSON API, the phones use
the pages and Amazon's own sign-in and consent pages.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from lwa_accounts.flows.amazon import hash_secret
from lwa_accounts.web.app import create_app
from tests.e2e.amazon_harness import (
    ADA,
    BASE_URL,
    CONTROL,
    PASSWORD,
    amazon_sign_in,
    confirm_email,
    count,
    database_of,
    e2e_settings,
    mint,
    register_password_account,
)
from tests.tv.harness import form_fields, through_amazon_pages

# The victim's account here; the attacker's Amazon account carries the same email. The
# victim's own Amazon account is the emulator's demo customer ADA (ada@example.com).
VICTIM_EMAIL = "victim@example.net"
OWNER_EMAIL = "ada@example.com"  # the owner's account here and their Amazon account (ADA)
ADA_AMAZON_PASSWORD = "ada-demo-password"
MALLORY_AMAZON_PASSWORD = "mallory-amazon-pass"
CSRF_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_.-]+)"')


@dataclass
class World:
    app: FastAPI
    tv: httpx.AsyncClient  # the device that signed in with Amazon (the attacker's, or the owner's)
    phone: httpx.AsyncClient  # the victim's (or owner's) phone browser
    other: httpx.AsyncClient  # the attacker's own browser

    async def form(
        self, browser: httpx.AsyncClient, path: str, data: dict[str, str]
    ) -> httpx.Response:
        page = await browser.get("/signin")
        match = CSRF_RE.search(page.text)
        assert match, "no CSRF token"
        return await browser.post(path, data={**data, "csrf_token": match.group(1)})


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    app = create_app(e2e_settings(tmp_path))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as tv,
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as phone,
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as other,
        ):
            yield World(app=app, tv=tv, phone=phone, other=other)


@pytest.fixture
async def w(tmp_path: Path) -> AsyncIterator[World]:
    async with world(tmp_path) as running:
        yield running


async def api_handoff(tv: httpx.AsyncClient, flow_id: str) -> dict[str, Any]:
    response = await tv.post("/api/v1/flows/handoff", json={"flow_id": flow_id})
    assert response.status_code == 201, response.text
    offer: dict[str, Any] = response.json()
    return offer


async def api_poll(tv: httpx.AsyncClient, flow_id: str) -> httpx.Response:
    return await tv.post("/api/v1/flows/poll", json={"flow_id": flow_id})


async def add_amazon_customer(client: httpx.AsyncClient, name: str, email: str) -> str:
    response = await client.post(
        f"{CONTROL}/customers",
        json={"name": name, "email": email, "password": MALLORY_AMAZON_PASSWORD},
    )
    assert response.status_code == 201, response.text
    user_id: str = response.json()["user_id"]
    return user_id


async def tv_link_required(w: World, amazon_user_id: str, device: str) -> tuple[str, str]:
    """The TV signs in with Amazon as ``amazon_user_id`` and asks for a hand-off code."""
    answer = await amazon_sign_in(w.tv, await mint(w.tv, amazon_user_id), device)
    assert (answer.status_code, answer.json()["result"]) == (200, "link_required"), answer.text
    flow_id: str = answer.json()["flow"]["id"]
    code: str = (await api_handoff(w.tv, flow_id))["code"]
    return flow_id, code


async def attacker_setup(w: World) -> tuple[dict[str, Any], str, str, str]:
    victim = await register_password_account(w.phone, "victim", VICTIM_EMAIL)
    await confirm_email(w.app, VICTIM_EMAIL)  # a confirmed address: the link step exists
    mallory = await add_amazon_customer(w.tv, "Mallory", VICTIM_EMAIL)
    flow_id, code = await tv_link_required(w, mallory, "Mallory's TV")
    return victim, mallory, flow_id, code


async def phone_signs_in_with_amazon(
    w: World, browser: httpx.AsyncClient, code: str, email: str, password: str
) -> httpx.Response:
    start = await w.form(browser, "/activate/amazon", {"code": code})
    assert start.status_code == 303, start.text
    return await through_amazon_pages(start, ours=browser, email=email, password=password)


async def flow_row(w: World, flow_id: str) -> Any:
    async with database_of(w.app).transaction() as stores:
        return await stores.pending_flows.get(hash_secret(flow_id))


async def audit_details(w: World) -> list[tuple[str, str | None, str | None]]:
    async with database_of(w.app).transaction() as stores:
        return [(e.kind, e.amazon_user_id, e.detail) for e in await stores.audit.list()]


async def assert_nothing_linked(w: World, victim: dict[str, Any], flow_id: str) -> None:
    """No link, no session for the TV, and the flow is still pending and unspent."""
    assert await count(w.app, "amazon_identities") == 0
    async with database_of(w.app).transaction() as stores:
        assert await stores.identities.get_for_account(victim["id"]) is None
        sessions = await stores.sessions.list_for_account(victim["id"])
    assert [s for s in sessions if s.kind == "device"] == []
    polled = await api_poll(w.tv, flow_id)
    assert (polled.status_code, polled.json()["result"]) == (200, "pending"), polled.text
    assert "session" not in polled.json()
    flow = await flow_row(w, flow_id)
    assert flow.status == "pending"
    assert flow.attempts_left == 5  # no password was even checked


async def test_sec14b_phished_password_on_the_victims_phone_links_nothing(w: World) -> None:
    victim, _, flow_id, code = await attacker_setup(w)
    # The victim opens the link the attacker sent and types their (right) password where
    # the old page asked for it "to link your TV" (or a phishing page posts it).
    opened = await w.phone.get(f"/activate?code={code}")
    assert opened.status_code == 200
    page = await w.form(w.phone, "/activate", {"code": code})
    assert page.status_code == 200
    typed = await w.form(w.phone, "/activate/link", {"code": code, "password": PASSWORD})
    assert typed.status_code == 403, typed.text
    assert "Sign in with Amazon on this phone first" in typed.text
    await assert_nothing_linked(w, victim, flow_id)
    assert any(
        kind == "amazon.refused" and (detail or "").startswith("reason=amazon_proof_required")
        for kind, _, detail in await audit_details(w)
    )

    # The page names the device, where and when it asked, warns, and asks for Amazon
    # first: there is no password field to type into.
    assert "Mallory&#39;s TV" in page.text or "Mallory's TV" in page.text
    assert "Only continue for a screen in front of you" in page.text
    assert "Asked from" in page.text
    assert "Asked at" in page.text
    assert 'name="password"' not in page.text
    assert form_fields(page.text, "/activate/amazon")["code"]
    step2 = await w.phone.get("/activate/link")  # no proof in this browser: no form
    assert step2.status_code == 403
    assert 'name="password"' not in step2.text

    # The attacker can prove their own Amazon identity, but only in their own browser:
    # the victim's phone still has no proof, and the attacker still lacks the password.
    proven = await phone_signs_in_with_amazon(
        w, w.other, code, VICTIM_EMAIL, MALLORY_AMAZON_PASSWORD
    )
    assert (proven.status_code, proven.headers.get("location")) == (303, "/activate/link")
    again = await w.form(w.phone, "/activate/link", {"code": code, "password": PASSWORD})
    assert again.status_code == 403
    guess = await w.form(w.other, "/activate/link", {"code": code, "password": "guess-1234"})
    assert guess.status_code == 401
    polled = await api_poll(w.tv, flow_id)
    assert (polled.status_code, polled.json()["result"]) == (200, "pending")
    assert await count(w.app, "amazon_identities") == 0


async def test_sec14b_victim_signing_in_with_their_own_amazon_is_refused(w: World) -> None:
    victim, mallory, flow_id, code = await attacker_setup(w)
    await w.form(w.phone, "/activate", {"code": code})
    # The victim does sign in with Amazon, with their own (different) Amazon account.
    back = await phone_signs_in_with_amazon(w, w.phone, code, OWNER_EMAIL, ADA_AMAZON_PASSWORD)
    assert back.status_code == 403, back.text
    assert "not the Amazon account the TV signed in with" in back.text
    assert "lwa_handoff_proof" not in back.headers.get("set-cookie", "")
    refusals = [
        (amazon_user, detail)
        for kind, amazon_user, detail in await audit_details(w)
        if kind == "amazon.refused" and (detail or "").startswith("reason=amazon_user_mismatch")
    ]
    assert [amazon_user for amazon_user, _ in refusals] == [ADA]  # audited as who tried
    assert mallory != ADA
    # And the password after it still links nothing.
    typed = await w.form(w.phone, "/activate/link", {"code": code, "password": PASSWORD})
    assert typed.status_code == 403
    await assert_nothing_linked(w, victim, flow_id)


async def test_sec14b_a_proof_is_only_for_its_own_handoff(w: World) -> None:
    await register_password_account(w.phone, "ada", OWNER_EMAIL)
    await confirm_email(w.app, OWNER_EMAIL)
    flow_a, code_a = await tv_link_required(w, ADA, "Owner TV")
    proven = await phone_signs_in_with_amazon(w, w.phone, code_a, OWNER_EMAIL, ADA_AMAZON_PASSWORD)
    assert proven.headers.get("location") == "/activate/link"
    # Another hand-off (a second TV, same Amazon user): the proof for A does not open it.
    flow_b, code_b = await tv_link_required(w, ADA, "Bedroom TV")
    page = await w.form(w.phone, "/activate", {"code": code_b})
    assert 'name="password"' not in page.text  # step 1 again: sign in with Amazon
    typed = await w.form(w.phone, "/activate/link", {"code": code_b, "password": PASSWORD})
    assert typed.status_code == 403
    assert (await flow_row(w, flow_b)).status == "pending"
    assert (await flow_row(w, flow_a)).status == "pending"
    assert await count(w.app, "amazon_identities") == 0


async def test_sec14b_the_owner_proves_the_same_amazon_then_links(w: World) -> None:
    owner = await register_password_account(w.phone, "ada", OWNER_EMAIL)
    await confirm_email(w.app, OWNER_EMAIL)
    flow_id, code = await tv_link_required(w, ADA, "Living-room TV")
    page = await w.form(w.phone, "/activate", {"code": code})
    assert "Living-room TV" in page.text
    back = await phone_signs_in_with_amazon(w, w.phone, code, OWNER_EMAIL, ADA_AMAZON_PASSWORD)
    assert (back.status_code, back.headers["location"]) == (303, "/activate/link"), back.text
    proof_cookie = back.headers["set-cookie"]
    assert "lwa_handoff_proof=" in proof_cookie
    assert "HttpOnly" in proof_cookie
    assert "Path=/activate" in proof_cookie
    step2 = await w.phone.get("/activate/link")
    assert step2.status_code == 200
    fields = form_fields(step2.text, "/activate/link")
    assert fields["code"]
    wrong = await w.phone.post("/activate/link", data=fields | {"password": "wrong-pass-1"})
    assert wrong.status_code == 401
    done = await w.phone.post("/activate/link", data=fields | {"password": PASSWORD})
    assert done.status_code == 200, done.text
    assert "Linked" in done.text
    collected = await api_poll(w.tv, flow_id)
    assert collected.status_code == 201, collected.text
    body = collected.json()
    assert body["account"]["id"] == owner["id"]
    assert body["account"]["amazon_user_id"] == ADA
    kinds = [kind for kind, _, _ in await audit_details(w)]
    assert "amazon.handoff_proven" in kinds
    assert "amazon.linked" in kinds
