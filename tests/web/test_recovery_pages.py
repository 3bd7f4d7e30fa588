"""The recovery pages over ASGI: /forgot, the e-mailed link's /reset-password, the code
page, the refusals' pages, and the "Forgot your password?" links that lead there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from lwa_accounts.clock import FixedClock
from lwa_accounts.testing.factories import amazon_profile, make_link
from lwa_accounts.testing.mail import code_in
from lwa_accounts.web.app import create_app
from lwa_accounts.web.templating import templates
from tests.e2e.amazon_harness import (
    PASSWORD,
    confirm_email,
    database_of,
    e2e_settings,
    password_token,
    register_password_account,
    running,
)
from tests.flows.recovery_helpers import reset_path_in
from tests.web.conftest import bearer, csrf_from
from tests.web.recovery_helpers import NEW_PASSWORD, ask_page, newest_reset, verified_account
from tests.web.test_amazon_pages import form_fields, through_amazon

Service = tuple[FastAPI, httpx.AsyncClient]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running(e2e_settings(tmp_path)) as pair:
        yield pair


async def _reset_form(client: httpx.AsyncClient, path: str) -> dict[str, str]:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return form_fields(page.text, "/reset-password")


# ---- the ways in --------------------------------------------------------------------------


async def test_signin_links_to_forgot(service: Service) -> None:
    _, client = service
    page = await client.get("/signin")
    assert '<a href="/forgot">Forgot your password?</a>' in page.text


async def test_the_amazon_link_step_links_to_forgot_without_the_address(
    service: Service,
) -> None:
    app, client = service
    await register_password_account(client)
    await confirm_email(app)  # only a confirmed address is a link step's target
    landed = await through_amazon(client, await client.get("/auth/amazon/start"))
    assert landed.headers["location"] == "/auth/amazon/link"
    page = await client.get("/auth/amazon/link")
    assert '<a href="/forgot">Forgot your password?</a>' in page.text
    assert "/forgot?" not in page.text  # nothing prefilled: the link says no address


def test_the_phones_link_step_links_to_forgot() -> None:
    page = templates.env.get_template("activate/link.html").render(
        proven=True,
        account_email="ada@example.com",
        amazon_email="ada@example.com",
        device_name="TV",
        display_code="BCDF-GHJK",
        asked_ip="192.0.2.1",
        asked_at=datetime(2026, 3, 1, tzinfo=UTC),
        csrf_token="t",
        errors={},
    )
    assert '<a href="/forgot">Forgot your password?</a>' in page
    assert "/forgot?" not in page


# ---- asking -------------------------------------------------------------------------------


async def test_asking_redirects_to_the_same_page_and_the_mail_arrives(service: Service) -> None:
    app, client = service
    await verified_account(app, client)
    asked = await ask_page(client, "ada")
    assert (asked.status_code, asked.headers["location"]) == (303, "/forgot/sent")
    sent = await client.get("/forgot/sent")
    assert "If an account with a verified email address matches" in sent.text
    mail = await newest_reset(app)
    assert reset_path_in(mail).startswith("/reset-password?token=")


async def test_an_empty_login_is_422_naming_the_field(service: Service) -> None:
    _, client = service
    refused = await ask_page(client, "   ")
    assert refused.status_code == 422
    assert 'id="login-error"' in refused.text


async def test_forms_check_csrf(service: Service) -> None:
    _, client = service
    await client.get("/forgot")
    for path in ("/forgot", "/reset-password", "/reset-password/code"):
        refused = await client.post(path, data={"login": "ada", "token": "x", "code": "1"})
        assert refused.status_code == 403, path


# ---- the link -----------------------------------------------------------------------------


async def test_the_link_shows_a_form_then_resets_and_ends_every_session(
    service: Service,
) -> None:
    app, client = service
    await verified_account(app, client)
    tv = await password_token(client)
    await ask_page(client, "ada@example.com")
    path = reset_path_in(await newest_reset(app))

    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "For the account <strong>ada</strong>" in page.text
    assert "Amazon account" not in page.text  # nothing linked, nothing asked
    fields = form_fields(page.text, "/reset-password")
    assert fields["token"]

    weak = await client.post("/reset-password", data=fields | {"new_password": "short"})
    assert weak.status_code == 422
    assert 'id="new_password-error"' in weak.text
    assert (await client.get("/api/v1/me", headers=bearer(tv))).status_code == 200

    done = await client.post("/reset-password", data=fields | {"new_password": NEW_PASSWORD})
    assert (done.status_code, done.headers["location"]) == (303, "/reset-password/done")
    assert "lwa_session" not in done.headers.get("set-cookie", "")  # nobody is signed in
    assert "Sign in again" in (await client.get("/reset-password/done")).text
    assert (await client.get("/api/v1/me", headers=bearer(tv))).status_code == 401
    old = await client.post("/api/v1/sessions", json={"username": "ada", "password": PASSWORD})
    assert old.status_code == 401
    new = await client.post("/api/v1/sessions", json={"username": "ada", "password": NEW_PASSWORD})
    assert new.status_code == 201


async def test_a_linked_account_chooses_what_happens_to_its_amazon_link(
    service: Service,
) -> None:
    app, client = service
    account = await verified_account(app, client)
    async with database_of(app).transaction() as stores:
        ada = await stores.accounts.get(account["id"])
        assert ada is not None
        await make_link(stores.identities, ada, amazon_profile(name="Eve", email="eve@example.net"))
    await ask_page(client, "ada")
    path = reset_path_in(await newest_reset(app))
    page = await client.get(path)
    assert "Eve (eve@example.net)" in page.text
    assert 'name="amazon_link" value="remove"' in page.text
    fields = form_fields(page.text, "/reset-password")
    fields.pop("amazon_link", None)
    unanswered = await client.post("/reset-password", data=fields | {"new_password": NEW_PASSWORD})
    assert unanswered.status_code == 422
    assert 'id="amazon_link-error"' in unanswered.text
    removed = await client.post(
        "/reset-password",
        data=fields | {"new_password": NEW_PASSWORD, "amazon_link": "remove"},
    )
    assert removed.status_code == 303
    async with database_of(app).transaction() as stores:
        assert await stores.identities.get_for_account(account["id"]) is None


async def test_refused_links_say_which_and_offer_a_new_one(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    settings = e2e_settings(tmp_path)
    app = create_app(settings, clock=clock)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url=settings.public_url
        ) as client,
    ):
        await verified_account(app, client)
        await ask_page(client, "ada")
        path = reset_path_in(await newest_reset(app))
        fields = await _reset_form(client, path)

        altered = await client.get(path[:-3] + ("abc" if not path.endswith("abc") else "xyz"))
        missing = await client.get("/reset-password")
        clock.advance(31 * 60)
        expired = await client.get(path)
        clock.advance(-31 * 60)
        await client.post("/reset-password", data=fields | {"new_password": NEW_PASSWORD})
        used = await client.get(path)
        used_again = await client.post(
            "/reset-password", data=fields | {"new_password": "another-fine-phrase"}
        )
    for response, status, says in [
        (altered, 400, "This link does not work"),
        (missing, 400, "This link does not work"),
        (expired, 410, "This link has expired"),
        (used, 410, "This link was already used"),
        (used_again, 410, "This link was already used"),
    ]:
        assert response.status_code == status, response.text
        assert says in response.text
        assert 'href="/forgot"' in response.text
        assert "Nothing was changed" in response.text


# ---- the code -----------------------------------------------------------------------------


async def test_the_code_page_resets_with_login_and_code(service: Service) -> None:
    app, client = service
    await verified_account(app, client)
    await ask_page(client, "ada")
    code = code_in(await newest_reset(app))
    page = await client.get("/reset-password/code")
    token = csrf_from(page.text)
    wrong = "000000" if code != "000000" else "111111"
    form = {"csrf_token": token, "login": "ada", "new_password": NEW_PASSWORD}
    refused = await client.post("/reset-password/code", data=form | {"code": wrong})
    assert refused.status_code == 400
    assert 'id="code-error"' in refused.text
    assert 'value="ada"' in refused.text  # what was typed stays, but never the password
    assert NEW_PASSWORD not in refused.text
    missing = await client.post("/reset-password/code", data=form | {"code": " "})
    assert missing.status_code == 422
    done = await client.post("/reset-password/code", data=form | {"code": code})
    assert (done.status_code, done.headers["location"]) == (303, "/reset-password/done")
    new = await client.post("/api/v1/sessions", json={"username": "ada", "password": NEW_PASSWORD})
    assert new.status_code == 201
