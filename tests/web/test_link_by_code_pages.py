"""The link step's "Email me a code" on the browser's /auth/amazon/link and on the phone's
/activate link step (security.md item 6b), over ASGI with the emulated Amazon's own pages:
real form posts with CSRF tokens, the code read from the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from lwa_accounts.testing.mail import QueuedMail, code_in, queued_mail
from tests.e2e.amazon_harness import (
    ADA,
    PASSWORD,
    database_of,
    e2e_settings,
    register_password_account,
    running,
)
from tests.security.test_sec14b_handoff_phishing import (
    ADA_AMAZON_PASSWORD,
    OWNER_EMAIL,
    World,
    api_poll,
    flow_row,
    phone_signs_in_with_amazon,
    tv_link_required,
    world,
)
from tests.web.test_amazon_pages import form_fields, through_amazon

Service = tuple[FastAPI, httpx.AsyncClient]
EMAIL = "ada@example.com"
MASKED = "a•••@example.com"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running(e2e_settings(tmp_path)) as pair:
        yield pair


@pytest.fixture
async def w(tmp_path: Path) -> AsyncIterator[World]:
    async with world(tmp_path) as running_world:
        yield running_world


async def set_verified(app: FastAPI, account_id: str, verified: bool = True) -> None:
    """What e-mail verification will do: here set directly through the store."""
    async with database_of(app).transaction() as stores:
        await stores.accounts.update(account_id, email_verified=verified)


async def codes_sent(app: FastAPI, to: str = EMAIL) -> list[QueuedMail]:
    return [m for m in await queued_mail(database_of(app), to) if m.kind == "prove_account"]


async def linked_by(app: FastAPI) -> list[str | None]:
    async with database_of(app).transaction() as stores:
        return [e.detail for e in await stores.audit.list(limit=500) if e.kind == "amazon.linked"]


async def at_link_step(client: httpx.AsyncClient) -> httpx.Response:
    landed = await through_amazon(client, await client.get("/auth/amazon/start?next=/account"))
    assert (landed.status_code, landed.headers["location"]) == (303, "/auth/amazon/link")
    return await client.get("/auth/amazon/link")


# ---- the browser ----


async def test_a_verified_account_links_by_the_emailed_code(service: Service) -> None:
    app, client = service
    account = await register_password_account(client)
    await set_verified(app, account["id"])
    page = await at_link_step(client)
    assert "Email me a code" in page.text
    assert MASKED in page.text
    offer = form_fields(page.text, "/auth/amazon/link/email-code")
    sent = await client.post("/auth/amazon/link/email-code", data=offer)
    assert (sent.status_code, sent.headers["location"]) == (303, "/auth/amazon/link/code")
    form_page = await client.get("/auth/amazon/link/code")
    assert form_page.status_code == 200
    assert MASKED in form_page.text
    fields = form_fields(form_page.text, "/auth/amazon/link/code")
    (mail,) = await codes_sent(app)
    code = code_in(mail)
    wrong = await client.post(
        "/auth/amazon/link/code", data=fields | {"code": "000000" if code != "000000" else "1"}
    )
    assert wrong.status_code == 400
    assert "4 attempts left" in wrong.text
    no_csrf = await client.post("/auth/amazon/link/code", data={"code": code})
    assert no_csrf.status_code == 403
    right = await client.post("/auth/amazon/link/code", data=fields | {"code": code})
    assert (right.status_code, right.headers["location"]) == (303, "/account")
    assert client.cookies.get("lwa_session")
    assert "Unlink Amazon" in (await client.get("/account")).text
    async with database_of(app).transaction() as stores:
        link = await stores.identities.get_for_account(account["id"])
    assert link is not None
    assert link.amazon_user_id == ADA
    assert await linked_by(app) == ["method=code"]
    assert (await client.get("/auth/amazon/link")).status_code == 410  # the step is spent
    assert (await client.get("/auth/amazon/link/code")).status_code == 410


async def test_an_unverified_account_is_offered_no_code(service: Service) -> None:
    app, client = service
    account = await register_password_account(client)
    await set_verified(app, account["id"])
    await at_link_step(client)
    # No longer verified (an unverified holder of Amazon's address gets no link step).
    await set_verified(app, account["id"], False)
    page = await client.get("/auth/amazon/link")
    assert "Email me a code" not in page.text
    assert "/auth/amazon/link/email-code" not in page.text
    csrf = form_fields(page.text, "/auth/amazon/link")["csrf_token"]
    forced = await client.post("/auth/amazon/link/email-code", data={"csrf_token": csrf})
    assert forced.status_code == 409
    assert "no verified e-mail address" in forced.text
    assert 'name="password"' in forced.text  # the password form, with the reason
    assert await codes_sent(app) == []
    skipped = await client.get("/auth/amazon/link/code")
    assert (skipped.status_code, skipped.headers["location"]) == (303, "/auth/amazon/link")
    typed = await client.post("/auth/amazon/link/code", data={"csrf_token": csrf, "code": "1"})
    assert typed.status_code == 409
    assert await linked_by(app) == []


async def test_the_code_works_only_in_the_browser_that_asked(w: World) -> None:
    account = await register_password_account(w.phone)
    await set_verified(w.app, account["id"])
    page = await at_link_step(w.phone)
    offer = form_fields(page.text, "/auth/amazon/link/email-code")
    await w.phone.post("/auth/amazon/link/email-code", data=offer)
    code = code_in((await codes_sent(w.app))[0])
    # Someone else's browser (no flow cookie of this step) gets nowhere with it.
    stolen = await w.form(w.other, "/auth/amazon/link/code", {"code": code})
    assert stolen.status_code == 410
    assert w.other.cookies.get("lwa_session") is None
    assert await linked_by(w.app) == []
    form_page = await w.phone.get("/auth/amazon/link/code")
    fields = form_fields(form_page.text, "/auth/amazon/link/code")
    right = await w.phone.post("/auth/amazon/link/code", data=fields | {"code": code})
    assert right.status_code == 303


async def test_an_empty_code_spends_nothing(service: Service) -> None:
    app, client = service
    account = await register_password_account(client)
    await set_verified(app, account["id"])
    page = await at_link_step(client)
    await client.post(
        "/auth/amazon/link/email-code", data=form_fields(page.text, "/auth/amazon/link/email-code")
    )
    form_page = await client.get("/auth/amazon/link/code")
    fields = form_fields(form_page.text, "/auth/amazon/link/code")
    empty = await client.post("/auth/amazon/link/code", data=fields | {"code": "  "})
    assert empty.status_code == 400
    assert "Enter the code." in empty.text
    async with database_of(app).engine.connect() as conn:
        left = (await conn.execute(text("SELECT attempts_left FROM pending_flows"))).scalar()
    assert left == 5


# ---- the phone (a TV's flow handed off) ----


async def test_the_phone_links_a_tv_by_the_emailed_code_after_the_amazon_proof(w: World) -> None:
    owner = await register_password_account(w.phone, "ada", OWNER_EMAIL)
    await set_verified(w.app, owner["id"])
    flow_id, code = await tv_link_required(w, ADA, "Living-room TV")
    # Without this browser's Amazon proof nothing is sent.
    early = await w.form(w.phone, "/activate/link/email-code", {"code": code})
    assert early.status_code == 403
    assert await codes_sent(w.app, OWNER_EMAIL) == []
    back = await phone_signs_in_with_amazon(w, w.phone, code, OWNER_EMAIL, ADA_AMAZON_PASSWORD)
    assert (back.status_code, back.headers["location"]) == (303, "/activate/link"), back.text
    step2 = await w.phone.get("/activate/link")
    assert "Email me a code" in step2.text
    assert MASKED in step2.text
    offer = form_fields(step2.text, "/activate/link/email-code")
    sent = await w.phone.post("/activate/link/email-code", data=offer)
    assert (sent.status_code, sent.headers["location"]) == (303, "/activate/link/code")
    form_page = await w.phone.get("/activate/link/code")
    assert form_page.status_code == 200
    assert "Living-room TV" in form_page.text  # who asked, as on every hand-off step
    fields = form_fields(form_page.text, "/activate/link/code")
    assert fields["code"] == code
    (mail,) = await codes_sent(w.app, OWNER_EMAIL)
    emailed = code_in(mail)
    # The attacker's browser, without a proof, cannot use the code either.
    csrf = form_fields((await w.other.get("/signin")).text, "/signin")["csrf_token"]
    stolen = await w.other.post(
        "/activate/link/code", data={"csrf_token": csrf, "code": code, "email_code": emailed}
    )
    assert stolen.status_code == 403
    wrong = await w.phone.post(
        "/activate/link/code",
        data=fields | {"email_code": "000000" if emailed != "000000" else "111111"},
    )
    assert wrong.status_code == 400
    assert "4 attempts left" in wrong.text
    done = await w.phone.post("/activate/link/code", data=fields | {"email_code": emailed})
    assert done.status_code == 200, done.text
    assert "Linked" in done.text
    collected = await api_poll(w.tv, flow_id)
    assert collected.status_code == 201, collected.text
    assert collected.json()["account"]["id"] == owner["id"]
    assert collected.json()["account"]["amazon_user_id"] == ADA
    assert await linked_by(w.app) == ["method=code"]
    assert (await flow_row(w, flow_id)).status == "spent"


async def test_the_phone_offers_no_code_for_an_unverified_account(w: World) -> None:
    owner = await register_password_account(w.phone, "ada", OWNER_EMAIL)
    await set_verified(w.app, owner["id"])
    flow_id, code = await tv_link_required(w, ADA, "Living-room TV")
    await set_verified(w.app, owner["id"], False)  # no longer verified
    await phone_signs_in_with_amazon(w, w.phone, code, OWNER_EMAIL, ADA_AMAZON_PASSWORD)
    step2 = await w.phone.get("/activate/link")
    assert 'name="password"' in step2.text
    assert "Email me a code" not in step2.text
    forced = await w.form(w.phone, "/activate/link/email-code", {"code": code})
    assert forced.status_code == 409
    assert "no verified e-mail address" in forced.text
    assert await codes_sent(w.app, OWNER_EMAIL) == []
    assert (await flow_row(w, flow_id)).attempts_left == 5
    done = await w.phone.post(
        "/activate/link", data=form_fields(step2.text, "/activate/link") | {"password": PASSWORD}
    )
    assert done.status_code == 200  # the password remains the way in
    assert await linked_by(w.app) == ["method=password"]
