"""No GET starts a state-changing step, and ``next=`` never leads into one (issue 9 hole
4, security.md item 20).

The attack: within 5 minutes of a sign-in, ``GET /auth/amazon/start?intent=attach`` (a
link, an image, a redirect) linked the Amazon identity signed in at Amazon in this browser
to whoever was signed in here, with no form and no CSRF token; and
``/signin?next=/auth/amazon/start%3Fintent%3Dattach`` even supplied the sign-in. Now an
attach starts only from a CSRF-checked POST, bound to the session that posted it.

Played over HTTP against the whole app (ASGI, embedded emulated Amazon); wherever a
response redirects, the test follows it the way a browser would, through Amazon's pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.amazon_harness import (
    PASSWORD,
    count,
    database_of,
    e2e_settings,
    register_password_account,
    running,
)
from tests.tv.harness import form_fields, through_amazon_pages

Service = tuple[FastAPI, httpx.AsyncClient]
ADA_EMAIL = "ada@example.com"
ADA_AMAZON_PASSWORD = "ada-demo-password"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running(e2e_settings(tmp_path)) as pair:
        yield pair


async def sign_in(client: httpx.AsyncClient, path: str = "/signin") -> httpx.Response:
    page = await client.get(path)
    fields = form_fields(page.text, "/signin") | {"username": "ada", "password": PASSWORD}
    return await client.post("/signin", data=fields)


async def follow(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """Follow redirects like a browser, through Amazon's sign-in and consent pages."""
    for _ in range(10):
        if response.status_code not in (302, 303):
            return response
        url = urljoin(str(response.request.url), response.headers["location"])
        if urlsplit(url).path.endswith("/ap/oa"):
            response = await through_amazon_pages(
                response, ours=client, email=ADA_EMAIL, password=ADA_AMAZON_PASSWORD
            )
        else:
            response = await client.get(url)
    raise AssertionError("too many redirects")


async def linked(app: FastAPI) -> int:
    return await count(app, "amazon_identities")


async def test_sec20_get_attach_within_five_minutes_of_sign_in_links_nothing(
    service: Service,
) -> None:
    app, client = service
    await register_password_account(client)
    assert (await sign_in(client)).status_code == 303  # a fresh sign-in: within 5 minutes
    start = await client.get("/auth/amazon/start?intent=attach")
    landed = await follow(client, start)  # wherever a browser would be taken
    assert await linked(app) == 0, landed.headers.get("location")
    assert start.status_code == 400
    assert "account page" in start.text
    assert "lwa_amazon_oauth" not in start.headers.get("set-cookie", "")


async def test_sec20_next_into_attach_after_sign_in_attaches_nothing(service: Service) -> None:
    app, client = service
    await register_password_account(client)
    # The link an attacker sends: sign in here, then be taken wherever next= says.
    signed_in = await sign_in(client, "/signin?next=/auth/amazon/start%3Fintent%3Dattach")
    assert signed_in.status_code == 303
    landed = await follow(client, signed_in)
    assert await linked(app) == 0
    assert signed_in.headers["location"] == "/account"  # a safe page
    assert landed.status_code == 200
    page = await client.get("/signin?next=/auth/amazon/start%3Fintent%3Dattach")
    assert form_fields(page.text, "/signin")["next"] == "/account"
    # Posted straight to /signin too (a forged form), and via "Login with Amazon".
    for bad_next in ("/auth/amazon/start?intent=attach", "/account/amazon/link", "/signout"):
        csrf = form_fields((await client.get("/signin")).text, "/signin")["csrf_token"]
        answer = await client.post(
            "/signin",
            data={"csrf_token": csrf, "username": "ada", "password": PASSWORD, "next": bad_next},
        )
        assert answer.headers["location"] == "/account", bad_next
    amazon_link = await client.get("/signin?next=/auth/amazon/start%3Fintent%3Dattach")
    assert 'href="/auth/amazon/start"' in amazon_link.text
    assert await linked(app) == 0


@pytest.mark.parametrize("path", ["/account/amazon/link", "/auth/amazon/start"])
async def test_sec20_attach_post_without_or_with_a_wrong_csrf_token_is_refused(
    service: Service, path: str
) -> None:
    app, client = service
    await register_password_account(client)
    await sign_in(client)
    for token in (None, "0" * 64, "not-a-token"):  # non-ASCII: hole 6, tested elsewhere
        data = {"intent": "attach"} | ({} if token is None else {"csrf_token": token})
        response = await client.post(path, data=data)
        assert 400 <= response.status_code < 500, (token, response.status_code)
        assert "lwa_amazon_oauth" not in response.headers.get("set-cookie", "")
        await follow(client, response)
    assert await linked(app) == 0


@pytest.mark.parametrize("path", ["/account/amazon/link", "/auth/amazon/start"])
async def test_sec20_attach_post_with_the_right_csrf_token_attaches(
    service: Service, path: str
) -> None:
    app, client = service
    await register_password_account(client)
    await sign_in(client)
    page = await client.get("/account")
    # The page's own form; POST /auth/amazon/start takes the same token plus intent=attach.
    fields = form_fields(page.text, "/account/amazon/link") | {"intent": "attach"}
    start = await client.post(path, data=fields)
    assert start.status_code == 303
    assert urlsplit(start.headers["location"]).path.endswith("/ap/oa")
    landed = await through_amazon_pages(
        start, ours=client, email=ADA_EMAIL, password=ADA_AMAZON_PASSWORD
    )
    assert landed.headers["location"] == "/account?amazon=linked"
    assert await linked(app) == 1


async def test_sec20_attach_lands_only_in_the_session_that_asked(service: Service) -> None:
    app, client = service
    await register_password_account(client)
    await register_password_account(client, "eve", "eve@example.net")
    await sign_in(client)
    fields = form_fields((await client.get("/account")).text, "/account/amazon/link")
    start = await client.post("/account/amazon/link", data=fields)
    assert start.status_code == 303
    # Before Amazon sends the browser back, someone else signs in in this browser.
    page = await client.get("/signin")
    switch = form_fields(page.text, "/signin") | {"username": "eve", "password": PASSWORD}
    assert (await client.post("/signin", data=switch)).status_code == 303
    landed = await through_amazon_pages(
        start, ours=client, email=ADA_EMAIL, password=ADA_AMAZON_PASSWORD
    )
    assert landed.headers["location"] == "/account?amazon_error=failed"
    assert await linked(app) == 0
    async with database_of(app).transaction() as stores:
        details = [e.detail for e in await stores.audit.list()]
    assert "reason=attach_session_changed" in details


async def test_sec20_plain_sign_in_by_get_still_works(service: Service) -> None:
    app, client = service
    landed = await follow(client, await client.get("/auth/amazon/start?next=/tv"))
    assert str(landed.request.url).endswith("/tv")
    assert await count(app, "accounts") == 1
