"""security.md item 8: a lockout that cannot be turned against the owner (issue 13).

Attacks over HTTP (the whole app over ASGI, each client at an address of its own), on the
memory throttle and on Redis (a key prefix of its own per test):

- guesses from many addresses spend the account's budget (its free failures, then
  progressive delays), yet the owner's known browser (the device cookie) and known TV (the
  API's ``device_token``) sign in with the right password, even from an address the
  attacker spent;
- a device proof for the attacker's own account gives no budget for the victim's;
- an altered or expired proof counts as none;
- wrong passwords from a known device lock only that device, and parallel guesses from it
  never get more than its budget;
- every refusal says the wait, in words and in ``Retry-After`` / ``retry_after``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from lwa_accounts.core.waits import try_again_in
from tests.e2e.amazon_harness import BASE_URL, PASSWORD
from tests.security.service import (
    CSRF_RE,
    Service,
    add_amazon_customer,
    amazon_sign_in,
    register,
    running,
    security_settings,
)

WRONG = "not-the-password-at-all"
FREE = 10  # the account's failures before delays (default PASSWORD_LIMIT_PER_ACCOUNT)
DEVICE_BUDGET = 10  # default PASSWORD_LIMIT_PER_DEVICE's first tier (15 minutes)


@dataclass
class Net:
    """The service, and clients at any address (each a browser or device of its own)."""

    service: Service
    stack: AsyncExitStack
    base_url: str = BASE_URL

    async def at(self, ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.service.transport.app, client=(ip, 40000))
        return await self.stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=self.base_url)
        )


def spray_addresses() -> Iterator[str]:
    for n in range(1, 250):
        yield f"203.0.113.{n}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def net(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Net]:
    overrides: dict[str, Any] = {}
    prefix = f"lwa-test-{uuid.uuid4().hex}"
    if request.param == "redis":
        overrides = {"redis_url": request.getfixturevalue("redis_url"), "redis_key_prefix": prefix}
    async with AsyncExitStack() as stack:
        service = await stack.enter_async_context(running(security_settings(tmp_path, **overrides)))
        yield Net(service, stack)
    if request.param == "redis":
        client = aioredis.Redis.from_url(overrides["redis_url"])
        keys = [key async for key in client.scan_iter(match=prefix + ":*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


# ---- calls ------------------------------------------------------------------------------------


async def api_sign_in(
    client: httpx.AsyncClient,
    username: str,
    password: str,
    *,
    device_token: str | None = None,
    header: str | None = None,
) -> httpx.Response:
    body: dict[str, str] = {"username": username, "password": password}
    if device_token is not None:
        body["device_token"] = device_token
    headers = {"Lwa-Device-Token": header} if header is not None else {}
    response = await client.post("/api/v1/sessions", json=body, headers=headers)
    assert response.status_code in (201, 401, 429), response.text
    return response


async def page_sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/signin")
    found = CSRF_RE.search(page.text)
    assert found, "no CSRF token on /signin"
    form = {"username": username, "password": password, "csrf_token": found.group(1)}
    response = await client.post("/signin", data=form)
    assert response.status_code in (303, 401, 429), response.text
    return response


async def known_tv(net: Net, ip: str, username: str = "ada") -> str:
    """A TV that signed in with the password: its device token."""
    signed_in = await api_sign_in(await net.at(ip), username, PASSWORD)
    assert signed_in.status_code == 201, signed_in.text
    token: str = signed_in.json()["device_token"]
    assert token
    return token


async def known_browser(net: Net, ip: str, username: str = "ada") -> httpx.AsyncClient:
    """A browser that signed in on /signin: it holds the device cookie."""
    browser = await net.at(ip)
    assert (await page_sign_in(browser, username, PASSWORD)).status_code == 303
    assert browser.cookies.get("lwa_device")
    return browser


async def spend_the_accounts_budget(net: Net, username: str = "ada") -> None:
    """A botnet: three wrong guesses from each of 12 addresses, all at once. The account's
    free failures go through, every other guess meets the delay."""
    clients = [await net.at(ip) for ip, _ in zip(spray_addresses(), range(12), strict=False)]
    burst = await asyncio.gather(
        *(api_sign_in(c, username, WRONG) for c in clients for _ in range(3))
    )
    assert Counter(r.status_code for r in burst) == {401: FREE, 429: 36 - FREE}
    # The owner without a device, from a fresh address: slowed down, never walled.
    late = await api_sign_in(await net.at("198.51.100.200"), username, PASSWORD)
    assert late.status_code == 429
    assert 1 <= late.json()["retry_after"] <= 60


def wait_of(response: httpx.Response) -> int:
    return int(response.headers["retry-after"])


# ---- attacks ----------------------------------------------------------------------------------


async def test_lockout_many_addresses_cannot_stop_the_owners_known_browser_or_tv(net: Net) -> None:
    await register(await net.at("192.0.2.1"), "ada", "ada@example.com")
    browser = await known_browser(net, "192.0.2.10")
    tv_token = await known_tv(net, "192.0.2.11")

    await spend_the_accounts_budget(net)

    assert (await page_sign_in(browser, "ada", PASSWORD)).status_code == 303
    tv = await net.at("192.0.2.11")
    assert (await api_sign_in(tv, "ada", PASSWORD, device_token=tv_token)).status_code == 201
    assert (await api_sign_in(tv, "ada", PASSWORD, header=tv_token)).status_code == 201
    # Even from an address the botnet spent (its pair and per-IP budgets are no obstacle).
    roaming = await net.at("203.0.113.1")
    roaming.cookies.set("lwa_device", browser.cookies["lwa_device"])
    assert (await page_sign_in(roaming, "ada", PASSWORD)).status_code == 303
    # The renewed proof keeps the same device (its budget), the session is a new one.
    renewed = await api_sign_in(tv, "ada", PASSWORD, device_token=tv_token)
    assert renewed.status_code == 201
    assert renewed.json()["device_token"] != ""


async def test_lockout_a_device_proof_for_account_a_gives_no_budget_for_b(net: Net) -> None:
    await register(await net.at("192.0.2.1"), "ada", "ada@example.com")
    await register(await net.at("192.0.2.66"), "mallory", "mallory@example.com")
    mallorys_token = await known_tv(net, "192.0.2.66", "mallory")
    mallorys_browser = await known_browser(net, "192.0.2.67", "mallory")

    await spend_the_accounts_budget(net)

    tv = await net.at("192.0.2.66")
    for attempt in (
        await api_sign_in(tv, "ada", PASSWORD, device_token=mallorys_token),
        await api_sign_in(tv, "ada", PASSWORD, header=mallorys_token),
        await page_sign_in(mallorys_browser, "ada", PASSWORD),
    ):
        assert attempt.status_code == 429, attempt.text
    # Mallory's proof still works for mallory: it is only worth anything there.
    assert (
        await api_sign_in(tv, "mallory", PASSWORD, device_token=mallorys_token)
    ).status_code == 201


async def test_lockout_an_altered_or_expired_device_proof_counts_as_none(net: Net) -> None:
    await register(await net.at("192.0.2.1"), "ada", "ada@example.com")
    token = await known_tv(net, "192.0.2.11")
    browser = await known_browser(net, "192.0.2.10")
    cookie = browser.cookies["lwa_device"]

    await spend_the_accounts_budget(net)

    tv = await net.at("192.0.2.11")
    flipped = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for altered in (flipped, token[:-10], token + "x", "x" * 200):
        assert (await api_sign_in(tv, "ada", PASSWORD, device_token=altered)).status_code == 429
    forged_cookie = await net.at("192.0.2.10")
    forged_cookie.cookies.set("lwa_device", cookie[:-2] + ("zz" if cookie[-2:] != "zz" else "yy"))
    assert (await page_sign_in(forged_cookie, "ada", PASSWORD)).status_code == 429

    assert (await api_sign_in(tv, "ada", PASSWORD, device_token=token)).status_code == 201
    net.service.clock.advance(180 * 24 * 3600 + 1)  # past LWA_ACCOUNTS_KNOWN_DEVICE_MAX_AGE
    # (the proof renewed above is just as old: neither is valid now)
    assert (await api_sign_in(tv, "ada", PASSWORD, device_token=token)).status_code == 429
    assert (await page_sign_in(browser, "ada", PASSWORD)).status_code == 429


async def test_lockout_wrong_passwords_from_a_known_device_lock_only_that_device(
    net: Net,
) -> None:
    await register(await net.at("192.0.2.1"), "ada", "ada@example.com")
    browser = await known_browser(net, "192.0.2.10")
    tv_token = await known_tv(net, "192.0.2.11")

    for _ in range(DEVICE_BUDGET):
        assert (await page_sign_in(browser, "ada", WRONG)).status_code == 401
    locked = await page_sign_in(browser, "ada", PASSWORD)  # the right one, too late
    assert locked.status_code == 429
    assert 14 * 60 < wait_of(locked) <= 15 * 60
    assert "Too many attempts. Try again in 15 minutes." in locked.text

    tv = await net.at("192.0.2.11")
    assert (await api_sign_in(tv, "ada", PASSWORD, device_token=tv_token)).status_code == 201
    # The account's budget lost nothing to the device's failures: a new client's wrong
    # password is the first of the account's free ones and of its address's three.
    newcomer = await net.at("198.51.100.7")
    first = await api_sign_in(newcomer, "ada", WRONG)
    assert (first.status_code, first.json()["attempts_left"]) == (401, 2)
    assert (await api_sign_in(newcomer, "ada", PASSWORD)).status_code == 201


async def test_lockout_parallel_guesses_from_one_known_device_never_exceed_its_budget(
    net: Net,
) -> None:
    await register(await net.at("192.0.2.1"), "ada", "ada@example.com")
    token = await known_tv(net, "192.0.2.11")
    stolen_by = [await net.at(f"203.0.113.{n}") for n in range(1, 31)]  # every guess elsewhere
    burst = await asyncio.gather(
        *(api_sign_in(c, "ada", WRONG, device_token=token) for c in stolen_by)
    )
    assert Counter(r.status_code for r in burst) == {401: DEVICE_BUDGET, 429: 30 - DEVICE_BUDGET}
    assert sorted(r.json()["attempts_left"] for r in burst if r.status_code == 401) == list(
        range(DEVICE_BUDGET)
    )
    tv = await net.at("192.0.2.11")
    assert (await api_sign_in(tv, "ada", PASSWORD, device_token=token)).status_code == 429
    # The account's own budget is whole: the owner elsewhere signs in.
    assert (await api_sign_in(await net.at("192.0.2.20"), "ada", PASSWORD)).status_code == 201


async def test_lockout_refusals_give_the_wait_in_words(net: Net) -> None:
    await register(await net.at("192.0.2.1"), "ada", "ada@example.com")
    await spend_the_accounts_budget(net)
    api = await api_sign_in(await net.at("198.51.100.9"), "ada", PASSWORD)
    problem = api.json()
    assert api.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "too_many_attempts"
    assert problem["retry_after"] == wait_of(api)
    assert (
        problem["detail"]
        == try_again_in(wait_of(api))
        == "Too many attempts. Try again in 1 minute."
    )
    page = await page_sign_in(await net.at("198.51.100.10"), "ada", PASSWORD)
    assert page.status_code == 429
    assert try_again_in(wait_of(page)) in page.text


async def test_lockout_the_device_cookie_is_host_prefixed_httponly_secure_and_lax(
    tmp_path: Path,
) -> None:
    settings = security_settings(tmp_path, cookie_secure=True, public_url="https://testserver")
    async with running(settings) as service, AsyncExitStack() as stack:
        net = Net(service, stack, base_url="https://testserver")
        await register(await net.at("192.0.2.1"), "ada", "ada@example.com")
        browser = await net.at("192.0.2.10")
        signed_in = await page_sign_in(browser, "ada", PASSWORD)
        assert signed_in.status_code == 303
        (cookie,) = [
            value
            for value in signed_in.headers.get_list("set-cookie")
            if value.startswith("__Host-lwa_device=")
        ]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert attributes == {"httponly", "secure", "samesite", "path", "max-age"}
        assert "; Path=/" in cookie
        assert "SameSite=lax" in cookie
        assert f"Max-Age={180 * 24 * 3600}" in cookie
        # Signed out, the browser is still a known device of ada's (the cookie stays).
        page = await browser.get("/account")
        found = CSRF_RE.search(page.text)
        assert found
        await browser.post("/signout", data={"csrf_token": found.group(1)})
        assert browser.cookies.get("__Host-lwa_device")
        await spend_the_accounts_budget(net)
        assert (await page_sign_in(browser, "ada", PASSWORD)).status_code == 303


async def test_lockout_a_known_tv_links_amazon_while_the_accounts_budget_is_spent(
    net: Net,
) -> None:
    """The link step's password is a password step like any other: the TV's proof counts."""
    await register(await net.at("192.0.2.1"), "grace", "grace@example.net")
    await net.service.confirm_email("grace@example.net")  # a link step needs a confirmed one
    token = await known_tv(net, "192.0.2.11", "grace")
    await spend_the_accounts_budget(net, "grace")
    tv = await net.at("192.0.2.11")
    user_id = await add_amazon_customer(tv, "Grace at Amazon", "grace@example.net")
    answer = await amazon_sign_in(tv, user_id)
    assert answer.json()["result"] == "link_required", answer.text
    link = {"flow_id": answer.json()["flow"]["id"], "password": PASSWORD}
    without = await tv.post("/api/v1/flows/link", json=link)
    assert without.status_code == 429, without.text
    assert without.json()["detail"] == try_again_in(wait_of(without))
    linked = await tv.post("/api/v1/flows/link", json=link, headers={"Lwa-Device-Token": token})
    assert linked.status_code == 201, linked.text


async def test_lockout_a_malformed_device_token_is_a_422_naming_the_field(net: Net) -> None:
    client = await net.at("192.0.2.1")
    for token in ("x" * 1025, 42, ""):
        body = {"username": "ada", "password": PASSWORD, "device_token": token}
        refused = await client.post("/api/v1/sessions", json=body)
        assert refused.status_code == 422, refused.text
        assert "device_token" in refused.json()["errors"]
