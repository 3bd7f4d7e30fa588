"""Pages over ASGI: register, sign in, account, sign out, CSRF, next=, cookies, headers."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import (
    PASSWORD,
    api_register,
    api_sign_in,
    bearer,
    csrf_from,
    make_settings,
    page_sign_in,
    serve_app,
)


async def test_register_page_signs_in_and_shows_account(client: httpx.AsyncClient) -> None:
    page = await client.get("/register")
    assert page.status_code == 200
    assert 'for="username"' in page.text
    assert "Amazon is emulated" in page.text
    response = await client.post(
        "/register",
        data={
            "csrf_token": csrf_from(page.text),
            "username": "Ada",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    account = await client.get("/account")
    assert account.status_code == 200
    assert "ada@example.com" in account.text
    assert "Ada Lovelace" in account.text
    assert "this session" in account.text


async def test_register_page_shows_field_errors_and_keeps_input(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/register")
    response = await client.post(
        "/register",
        data={
            "csrf_token": csrf_from(page.text),
            "username": "ab",
            "email": "broken",
            "name": "Ada <script>",
            "password": "short",
        },
    )
    assert response.status_code == 422
    assert 'id="username-error"' in response.text
    assert 'id="email-error"' in response.text
    assert 'id="password-error"' in response.text
    assert "Ada &lt;script&gt;" in response.text  # escaped, kept
    assert "<script>" not in response.text
    assert (await client.get("/account")).status_code == 303


async def test_sign_in_sign_out_round_trip(client: httpx.AsyncClient) -> None:
    await api_register(client)
    response = await page_sign_in(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    token = client.cookies.get("lwa_session")
    assert token
    assert (await client.get("/account")).status_code == 200
    assert 'action="/signout"' in (await client.get("/signin")).text  # header knows
    account = await client.get("/account")
    signout = await client.post("/signout", data={"csrf_token": csrf_from(account.text)})
    assert signout.status_code == 303
    assert signout.headers["location"].startswith("/signin")
    assert client.cookies.get("lwa_session") is None
    assert (await client.get("/account")).status_code == 303
    # The old cookie value is dead on the server too.
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401


async def test_generic_message_for_wrong_user_or_password(client: httpx.AsyncClient) -> None:
    await api_register(client)
    wrong = await page_sign_in(client, password="not-the-password")
    unknown = await page_sign_in(client, username="nobody", password="not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    message = "The username or password is incorrect."
    assert message in wrong.text
    assert message in unknown.text
    assert 'value="nobody"' in unknown.text  # the login is kept, the password is not
    assert "not-the-password" not in unknown.text


async def test_page_throttle_401_then_429_with_retry_after(client: httpx.AsyncClient) -> None:
    await api_register(client)
    for _ in range(3):
        assert (await page_sign_in(client, password="not-the-password")).status_code == 401
    blocked = await page_sign_in(client)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert "Too many attempts" in blocked.text
    assert client.cookies.get("lwa_session") is None


async def test_new_session_token_at_every_sign_in(client: httpx.AsyncClient) -> None:
    await api_register(client)
    # A planted (fixated) cookie is never adopted: sign-in issues a fresh one.
    client.cookies.set("lwa_session", "attacker-chosen-value", domain="testserver.local")
    await page_sign_in(client)
    first = client.cookies.get("lwa_session")
    assert first
    assert first != "attacker-chosen-value"
    await page_sign_in(client)
    second = client.cookies.get("lwa_session")
    assert second
    assert second != first
    # Signing in again ended the browser's previous session.
    assert (await client.get("/api/v1/me", headers=bearer(first))).status_code == 401
    assert (await client.get("/api/v1/me", headers=bearer(second))).status_code == 200


async def test_session_cookie_flags(client: httpx.AsyncClient) -> None:
    await api_register(client)
    response = await page_sign_in(client)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("lwa_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # test/development


async def test_secure_cookie_outside_development(tmp_path: Path) -> None:
    async with serve_app(make_settings(tmp_path, cookie_secure=True)) as client:
        await api_register(client)
        response = await page_sign_in(client)
        assert "Secure" in response.headers["set-cookie"]
        client.cookies.clear()
        csrf_cookie = (await client.get("/signin")).headers["set-cookie"]
        # __Host-: browsers accept it only over HTTPS, for Path=/, from this exact host.
        assert csrf_cookie.startswith("__Host-lwa_csrf=")
        assert "Secure" in csrf_cookie
        assert "HttpOnly" in csrf_cookie


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x=1",
        " /account",
        "/%0d%0a",
    ],
)
async def test_next_refuses_anything_but_local_paths(
    client: httpx.AsyncClient, next_url: str
) -> None:
    await api_register(client)
    response = await page_sign_in(client, next_url=next_url)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == "/account" or (location == next_url and next_url == "/%0d%0a")
    assert not location.startswith("//")
    assert "evil" not in location


async def test_next_accepts_a_local_path(client: httpx.AsyncClient) -> None:
    await api_register(client)
    page = await client.get("/signin?next=/account%3Fx%3D1")
    assert 'name="next" value="/account?x=1"' in page.text
    response = await page_sign_in(client, next_url="/account?x=1")
    assert response.headers["location"] == "/account?x=1"


async def test_account_requires_sign_in_and_keeps_next(client: httpx.AsyncClient) -> None:
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/account"


@pytest.mark.parametrize("token", [None, "", "0" * 64, "forged"])
async def test_csrf_missing_or_wrong_is_403(client: httpx.AsyncClient, token: str | None) -> None:
    await api_register(client)
    await client.get("/signin")  # gets the CSRF cookie
    data = {"username": "ada", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = await client.post("/signin", data=data)
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "The form expired or did not come from this site" in response.text
    assert client.cookies.get("lwa_session") is None


async def test_csrf_token_from_another_visitor_is_refused(client: httpx.AsyncClient) -> None:
    await api_register(client)
    page = await client.get("/signin")
    token = csrf_from(page.text)
    client.cookies.set(
        "lwa_csrf", "A" * 43, domain="testserver.local"
    )  # a different visitor's nonce
    response = await client.post(
        "/signin", data={"csrf_token": token, "username": "ada", "password": PASSWORD}
    )
    assert response.status_code == 403


async def test_csrf_token_is_bound_to_the_session(client: httpx.AsyncClient) -> None:
    await api_register(client)
    anonymous_token = csrf_from((await client.get("/signin")).text)
    await page_sign_in(client)
    account = await client.get("/account")
    signed_in_token = csrf_from(account.text)
    assert signed_in_token != anonymous_token
    # A token minted before sign-in (or in another session) no longer works...
    stale = await client.post("/signout", data={"csrf_token": anonymous_token})
    assert stale.status_code == 403
    assert (await client.get("/account")).status_code == 200
    # ...the current one does.
    assert (await client.post("/signout", data={"csrf_token": signed_in_token})).status_code == 303


async def test_csrf_on_signout_and_account_forms(client: httpx.AsyncClient) -> None:
    await api_register(client)
    await page_sign_in(client)
    assert (await client.post("/signout", data={"next": "/"})).status_code == 403
    assert (await client.post("/signout")).status_code == 400  # not even a form
    assert (await client.get("/account")).status_code == 200  # still signed in
    assert (
        await client.post("/account/password", data={"new_password": "x" * 12})
    ).status_code == 403


async def test_account_lists_sessions_and_signs_one_out(client: httpx.AsyncClient) -> None:
    await api_register(client)
    tv = await api_sign_in(client)
    await page_sign_in(client)
    page = await client.get("/account")
    assert "Test TV" in page.text
    assert "device" in page.text
    assert "Last used" in page.text
    ids = re.findall(r'action="/account/sessions/([^/"]+)/signout"', page.text)
    assert len(ids) == 2
    sessions = (await client.get("/api/v1/sessions", headers=bearer(tv))).json()["sessions"]
    tv_id = next(s["id"] for s in sessions if s["current"])
    response = await client.post(
        f"/account/sessions/{tv_id}/signout", data={"csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 303
    assert (await client.get("/api/v1/me", headers=bearer(tv))).status_code == 401
    after = await client.get(response.headers["location"])
    assert "That session was signed out." in after.text
    assert "Test TV" not in after.text


async def test_change_password_page(client: httpx.AsyncClient) -> None:
    await api_register(client)
    tv = await api_sign_in(client)
    await page_sign_in(client)
    page = await client.get("/account")
    token = csrf_from(page.text)
    mismatch = await client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "a-brand-new-passphrase",
            "confirm_password": "something-else-entirely",
        },
    )
    assert mismatch.status_code == 422
    assert "do not match" in mismatch.text
    wrong = await client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": "not-the-password",
            "new_password": "a-brand-new-passphrase",
            "confirm_password": "a-brand-new-passphrase",
        },
    )
    assert wrong.status_code == 401
    assert "current password is incorrect" in wrong.text
    done = await client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "a-brand-new-passphrase",
            "confirm_password": "a-brand-new-passphrase",
        },
    )
    assert done.status_code == 303
    assert (await client.get("/account")).status_code == 200
    assert (await client.get("/api/v1/me", headers=bearer(tv))).status_code == 401
    assert (await api_sign_in(client, password="a-brand-new-passphrase")) != ""


async def test_security_headers_on_pages(client: httpx.AsyncClient) -> None:
    response = await client.get("/signin")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize(
    "url",
    [
        "/activate?code=BCDF-GHJK",
        "/auth/amazon/callback?code=secret-code&state=secret-state",
        "/signin?next=/account",
    ],
)
async def test_sec01_a_url_with_a_query_is_never_sent_on_as_referer(
    client: httpx.AsyncClient, url: str
) -> None:
    # The code in such a URL would reach the next page's Referer (and a proxy's log).
    response = await client.get(url)
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_health_and_static(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    css = await client.get("/static/app.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]


async def test_unknown_page_is_a_friendly_html_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "There is nothing here." in response.text


async def test_banner_and_emulator_only_when_amazon_is_emulated(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Emulated (the default): the offline Amazon answers under /_amazon, not our 404 page.
    emulated = await client.get("/_amazon/ap/oa")
    assert emulated.status_code != 404
    assert "There is nothing here." not in emulated.text
    real = make_settings(tmp_path / "real", lwa_client_id="amzn1.application-oa2-client.real")
    async with serve_app(real) as real_client:
        assert "Amazon is emulated" not in (await real_client.get("/signin")).text
        assert (await real_client.get("/_amazon/ap/oa")).status_code == 404


async def test_page_journey_on_every_database(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    page = await client.get("/register")
    token = csrf_from(page.text)
    bad = await client.post(
        "/register",
        data={
            "csrf_token": token,
            "username": "ada\x00",
            "email": "ada\x00@example.com",
            "name": "Ada\x00",
            "password": PASSWORD,
        },
    )
    assert bad.status_code == 422
    registered = await client.post(
        "/register",
        data={
            "csrf_token": token,
            "username": "ada",
            "email": "ada@example.com",
            "name": "Ada",
            "password": PASSWORD,
        },
    )
    assert registered.status_code == 303
    assert (await page_sign_in(client, username="ada\x00")).status_code == 401
    assert (await page_sign_in(client, username="ada@example.com")).status_code == 303
    account = await client.get("/account")
    assert account.status_code == 200
    odd = await client.post(
        "/account/sessions/%00/signout", data={"csrf_token": csrf_from(account.text)}
    )
    assert odd.status_code == 303
    signout = await client.post("/signout", data={"csrf_token": csrf_from(account.text)})
    assert signout.status_code == 303
    assert (await client.get("/account")).status_code == 303
