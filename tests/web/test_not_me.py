"""/not-me over HTTP: the link from a real notice asks first (a GET changes nothing), the
confirmed POST signs every session out (bearer tokens get 401, the browser is signed out)
and unlinks Amazon, and a refused link gets a page saying which (web/pages/not_me.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from lwa_accounts.flows import not_me
from lwa_accounts.testing.mail import link_in
from tests.e2e.amazon_harness import ADA
from tests.security.service import (
    CSRF_RE,
    Service,
    amazon_sign_in,
    bearer,
    browser_sign_in,
    form_post,
    me,
    mint,
    password_token,
    register,
    running,
    security_settings,
)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running(security_settings(tmp_path)) as running_service:
        yield running_service


async def linked_account(service: Service) -> tuple[httpx.AsyncClient, str]:
    """ada with a password and Amazon attached; the not-me link from the notice."""
    client = await service.client()
    await register(client, "ada", "ada@example.com")
    await service.confirm_email("ada@example.com")  # so Amazon's Ada meets a link step
    token = await password_token(client, "ada")
    attached = await client.post(
        "/api/v1/me/amazon", json={"access_token": await mint(client, ADA)}, headers=bearer(token)
    )
    assert attached.status_code == 200, attached.text
    [notice] = await service.mail_to("ada@example.com", "notice_amazon_linked")
    url = urlsplit(link_in(notice, "/not-me?token="))
    return client, f"{url.path}?{url.query}"


async def confirm(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """Press the button on the page the link opens."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    csrf = CSRF_RE.search(page.text)
    token = urlsplit(path).query.removeprefix("token=")
    assert csrf
    assert f'value="{token}"' in page.text
    return await client.post("/not-me", data={"csrf_token": csrf.group(1), "token": token})


async def test_the_link_asks_first_then_signs_out_everywhere_and_unlinks(
    service: Service,
) -> None:
    api, path = await linked_account(service)
    tokens = [await password_token(api, "ada") for _ in range(2)]
    browser = await service.client()
    await browser_sign_in(browser, "ada")
    assert (await browser.get("/account")).status_code == 200

    scanner = await service.client()  # a mail scanner opening every link, twice
    for _ in range(2):
        page = await scanner.get(path)
        assert page.status_code == 200
        assert "ada" in page.text
        assert "Nothing happens until you press the button" in page.text
    assert [(await me(api, t)).status_code for t in tokens] == [200, 200]
    assert await service.count("amazon_identities") == 1
    assert await service.count("audit_events WHERE kind LIKE 'notice.%'") == 0

    person = await service.client()  # signed out, maybe locked out: no sign-in needed
    done = await confirm(person, path)
    assert done.status_code == 303
    assert done.headers["location"] == "/not-me/done?password=yes"
    shown = await person.get(done.headers["location"])
    assert shown.status_code == 200
    assert "Now reset your password" in shown.text
    assert 'href="/forgot"' in shown.text

    assert [(await me(api, t)).status_code for t in tokens] == [401, 401]
    assert (await browser.get("/account")).headers["location"].startswith("/signin")
    assert await service.count("amazon_identities") == 0
    assert await service.count("audit_events WHERE kind = 'notice.not_me'") == 1
    # Amazon alone no longer signs in: the identity meets the link step again.
    again = await amazon_sign_in(api, ADA)
    assert again.json()["result"] == "link_required", again.text


async def test_a_post_without_the_form_token_changes_nothing(service: Service) -> None:
    api, path = await linked_account(service)
    token = await password_token(api, "ada")
    link_token = urlsplit(path).query.removeprefix("token=")
    other = await service.client()
    await other.get(path)  # has a CSRF cookie, but posts no token (a cross-site form)
    refused = await other.post("/not-me", data={"token": link_token})
    assert refused.status_code == 403
    assert (await me(api, token)).status_code == 200
    assert await service.count("amazon_identities") == 1


async def test_refused_links_get_a_page_saying_which(service: Service) -> None:
    api, path = await linked_account(service)
    token = await password_token(api, "ada")
    visitor = await service.client()

    altered = await visitor.get(path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB"))
    assert altered.status_code == 400
    assert "Link not valid" in altered.text
    assert 'href="/forgot"' in altered.text
    assert (await visitor.get("/not-me")).status_code == 400  # no token at all
    posted = await form_post(visitor, "/not-me", {"token": "not-a-token"})
    assert posted.status_code == 400

    service.clock.advance(int(not_me.MAX_AGE.total_seconds()) + 1)
    expired = await visitor.get(path)
    assert expired.status_code == 410
    assert "Link expired" in expired.text
    late = await form_post(visitor, "/not-me", {"token": urlsplit(path).query[len("token=") :]})
    assert late.status_code == 410
    assert "Link expired" in late.text
    service.clock.advance(-int(not_me.MAX_AGE.total_seconds()) - 1)  # back: the token lives
    assert (await me(api, token)).status_code == 200
    assert await service.count("amazon_identities") == 1
    refusals = "audit_events WHERE kind = 'notice.not_me_refused'"
    assert await service.count(refusals) == 2  # the two posts; opening a link audits nothing


async def test_an_account_without_a_password_is_told_to_set_one(service: Service) -> None:
    device = await service.client()
    signed_in = await amazon_sign_in(device, ADA)
    assert signed_in.status_code == 201, signed_in.text
    account_id = signed_in.json()["account"]["id"]
    session = signed_in.json()["session"]["token"]
    link = not_me.token(
        service.services.settings,
        account_id=account_id,
        notice="new_device",
        now=service.clock.now() - timedelta(hours=1),
    )
    person = await service.client()
    done = await confirm(person, f"/not-me?token={link}")
    assert done.headers["location"] == "/not-me/done?password=no"
    page = await person.get(done.headers["location"])
    assert "The account has no password" in page.text
    assert (await me(device, session)).status_code == 401
    assert await service.count("amazon_identities") == 0
