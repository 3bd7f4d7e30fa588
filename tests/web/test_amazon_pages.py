"""The "Login with Amazon" web flow over ASGI, through the emulated Amazon's own pages.

Real HTML form posts (CSRF tokens parsed out of the pages) on both sides: our /signin,
Amazon's /ap/oa sign-in and consent pages, our callback, link and registration pages.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.amazon_harness import (
    ADA,
    BASE_URL,
    CONTROL,
    PASSWORD,
    confirm_email,
    count,
    database_of,
    e2e_settings,
    register_password_account,
    running,
)

Service = tuple[FastAPI, httpx.AsyncClient]
ADA_AMAZON_PASSWORD = "ada-demo-password"
INPUT_RE = re.compile(r"<input\b[^>]*>", re.S)
ATTR_RE = re.compile(r'(\w[\w-]*)="([^"]*)"')


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running(e2e_settings(tmp_path)) as pair:
        yield pair


def form_fields(page: str, action: str) -> dict[str, str]:
    """The named inputs (with their values) of the form posting to ``action``."""
    for match in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page, re.S):
        attrs = dict(ATTR_RE.findall(match.group(1)))
        if html.unescape(attrs.get("action", "")) != action:
            continue
        fields: dict[str, str] = {}
        for tag in INPUT_RE.findall(match.group(2)):
            named = dict(ATTR_RE.findall(tag))
            if "name" in named:
                fields[named["name"]] = html.unescape(named.get("value", ""))
        return fields
    raise AssertionError(f"no form posting to {action}")


def local(url: str) -> str:
    return url[len(BASE_URL) :] if url.startswith(BASE_URL) else url


async def through_amazon(
    client: httpx.AsyncClient,
    start: httpx.Response,
    *,
    email: str = "ada@example.com",
    password: str = ADA_AMAZON_PASSWORD,
    decision: str = "allow",
) -> httpx.Response:
    """From our 303 to Amazon, through Amazon's sign-in and consent pages, to our callback."""
    assert start.status_code == 303, start.text
    authorize = local(start.headers["location"])
    assert authorize.startswith("/_amazon/ap/oa?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 43
    response = await client.get(authorize)
    for _ in range(6):  # sign-in page, consent page, redirects: whatever Amazon shows
        if response.status_code in (302, 303):
            if "/_amazon/" not in response.headers["location"]:
                break
            response = await client.get(local(response.headers["location"]))
        elif 'action="/_amazon/ap/signin"' in response.text:
            fields = form_fields(response.text, "/_amazon/ap/signin")
            fields |= {"email": email, "password": password}
            response = await client.post("/_amazon/ap/signin", data=fields)
        elif 'action="/_amazon/ap/consent"' in response.text:
            fields = form_fields(response.text, "/_amazon/ap/consent") | {"decision": decision}
            response = await client.post("/_amazon/ap/consent", data=fields)
        else:
            raise AssertionError(response.text)
    assert response.status_code in (302, 303), response.text
    callback = local(response.headers["location"])
    assert callback.startswith("/auth/amazon/callback?")
    return await client.get(callback)


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    return form_fields(page.text, path if path != "/account" else "/account/password")["csrf_token"]


async def test_buttons_on_signin_and_register(service: Service) -> None:
    _, client = service
    for path in ("/signin", "/register", "/signin?next=/account/x"):
        page = await client.get(path)
        assert 'id="login-with-amazon"' in page.text
        assert "Login with Amazon" in page.text
    page = await client.get("/signin?next=/tv")
    assert 'href="/auth/amazon/start?next=/tv"' in page.text
    # next= leads only to pages that merely show something (security.md item 20).
    page = await client.get("/signin?next=/somewhere")
    assert 'href="/auth/amazon/start"' in page.text


async def test_sec19_new_user_signs_in_with_amazon_then_returns_with_a_new_session(
    service: Service,
) -> None:
    app, client = service
    landed = await through_amazon(client, await client.get("/auth/amazon/start?next=/account"))
    assert landed.status_code == 303
    assert landed.headers["location"] == "/account"
    set_cookie = landed.headers.get_list("set-cookie")
    session_cookie = next(c for c in set_cookie if c.startswith("lwa_session="))
    assert "HttpOnly" in session_cookie
    assert "samesite=lax" in session_cookie.lower()
    account = await client.get("/account")
    assert account.status_code == 200
    assert "Ada Lovelace" in account.text
    assert "Unlink Amazon" not in account.text  # no password: Amazon is the only way in
    assert "only way to sign in" in account.text
    first_token = client.cookies.get("lwa_session")

    client.cookies.delete("lwa_session")
    again = await through_amazon(client, await client.get("/auth/amazon/start"))
    assert again.status_code == 303
    assert client.cookies.get("lwa_session") != first_token
    assert await count(app, "accounts") == 1


async def test_sec04_callback_replay_and_forged_state_fail(service: Service) -> None:
    app, client = service
    start = await client.get("/auth/amazon/start")
    assert start.status_code == 303
    oauth_cookie = client.cookies.get("lwa_amazon_oauth", path="/auth/amazon")
    assert oauth_cookie
    landed = await through_amazon(client, start)
    assert landed.status_code == 303
    callback_url = str(landed.request.url)
    # The cookie is gone: the same callback again is refused.
    replay = await client.get(local(callback_url))
    assert replay.status_code == 400
    assert "expired or was already used" in replay.text
    # Even with the old cookie put back, Amazon's code is spent.
    client.cookies.set(
        "lwa_amazon_oauth", oauth_cookie, domain="accounts.test", path="/auth/amazon"
    )
    replay = await client.get(local(callback_url))
    assert replay.status_code == 400
    # A forged state never matches.
    start = await client.get("/auth/amazon/start")
    forged = await client.get("/auth/amazon/callback?code=abc&state=forged")
    assert forged.status_code == 400
    assert await count(app, "accounts") == 1
    async with database_of(app).transaction() as stores:
        details = [e.detail for e in await stores.audit.list()]
    assert "reason=bad_state" in details


async def test_sec04_state_is_bound_to_the_browser(service: Service, tmp_path: Path) -> None:
    app, client = service
    start = await client.get("/auth/amazon/start")
    # Another browser (no cookie) cannot finish this trip.
    async with httpx.AsyncClient(transport=client._transport, base_url=BASE_URL) as other:
        authorize = local(start.headers["location"])
        state = parse_qs(urlsplit(authorize).query)["state"][0]
        response = await other.get(f"/auth/amazon/callback?code=x&state={state}")
    assert response.status_code == 400
    assert await count(app, "accounts") == 0


async def test_sec05_next_accepts_only_local_paths(service: Service) -> None:
    _, client = service
    for bad in (
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        client.cookies.clear()
        start = await client.get("/auth/amazon/start", params={"next": bad})
        landed = await through_amazon(client, start)
        assert landed.headers["location"] == "/account"
    client.cookies.clear()
    landed = await through_amazon(client, await client.get("/auth/amazon/start?next=/account?x=1"))
    assert landed.headers["location"] == "/account?x=1"


async def test_amazon_errors_become_friendly_pages(service: Service) -> None:
    _, client = service
    declined = await through_amazon(client, await client.get("/auth/amazon/start"), decision="deny")
    assert declined.status_code == 400
    assert "chose not to share" in declined.text
    assert 'href="/signin"' in declined.text


async def test_sec06_email_collision_links_only_after_the_password(service: Service) -> None:
    app, client = service
    local_account = await register_password_account(client)
    await confirm_email(app)  # only a confirmed address is ever a link step's target
    landed = await through_amazon(client, await client.get("/auth/amazon/start?next=/account"))
    assert landed.status_code == 303
    assert landed.headers["location"] == "/auth/amazon/link"
    assert client.cookies.get("lwa_session") is None
    page = await client.get("/auth/amazon/link")
    assert "ada@example.com" in page.text
    assert "Create a separate account instead" in page.text
    fields = form_fields(page.text, "/auth/amazon/link")
    wrong = await client.post("/auth/amazon/link", data=fields | {"password": "wrong-password"})
    assert wrong.status_code == 401
    assert "2 attempts left" in wrong.text
    no_csrf = await client.post("/auth/amazon/link", data={"password": PASSWORD})
    assert no_csrf.status_code == 403
    right = await client.post("/auth/amazon/link", data=fields | {"password": PASSWORD})
    assert right.status_code == 303
    assert right.headers["location"] == "/account"
    account = await client.get("/account")
    assert "Unlink Amazon" in account.text
    async with database_of(app).transaction() as stores:
        link = await stores.identities.get_for_account(local_account["id"])
    assert link is not None
    assert link.amazon_user_id == ADA
    gone = await client.get("/auth/amazon/link")
    assert gone.status_code == 410


async def test_separate_account_registration_page(service: Service) -> None:
    app, client = service
    # Zoë's Amazon email belongs to another local account: she creates a separate one.
    changed = await client.post(
        f"{CONTROL}/customers",
        json={"name": "Zoë Q", "email": "zoe@example.com", "password": "zoe-password"},
    )
    assert changed.status_code == 201, changed.text
    await register_password_account(client, username="zoe", email="zoe@example.com")
    await confirm_email(app, "zoe@example.com")
    landed = await through_amazon(
        client,
        await client.get("/auth/amazon/start"),
        email="zoe@example.com",
        password="zoe-password",
    )
    assert landed.headers["location"] == "/auth/amazon/link"
    page = await client.get("/auth/amazon/register")
    assert page.status_code == 200
    fields = form_fields(page.text, "/auth/amazon/register")
    assert fields["name"] == "Zoë Q"
    assert fields["email"] == ""  # the Amazon email belongs to the other account
    assert fields["username"] == "zoe.q"  # from the name: the email is not usable
    missing = await client.post("/auth/amazon/register", data=fields)
    assert missing.status_code == 422
    assert "Enter an email address." in missing.text
    taken = await client.post("/auth/amazon/register", data=fields | {"email": "zoe@example.com"})
    assert taken.status_code == 409
    done = await client.post("/auth/amazon/register", data=fields | {"email": "zoe@work.example"})
    assert done.status_code == 303, done.text
    assert await count(app, "accounts") == 2
    assert await count(app, "amazon_identities") == 1


async def test_attach_and_unlink_from_the_account_page(service: Service) -> None:
    _, client = service
    await register_password_account(client)
    # Sign in with the password on the page.
    signin = await client.get("/signin")
    fields = form_fields(signin.text, "/signin") | {"username": "ada", "password": PASSWORD}
    assert (await client.post("/signin", data=fields)).status_code == 303
    page = await client.get("/account")
    link_form = form_fields(page.text, "/account/amazon/link")
    start = await client.post("/account/amazon/link", data=link_form)
    # Straight from the CSRF-checked POST to Amazon: no GET step that could be linked to.
    assert start.status_code == 303
    assert local(start.headers["location"]).startswith("/_amazon/ap/oa?")
    before = client.cookies.get("lwa_session")
    landed = await through_amazon(client, start)
    assert landed.headers["location"] == "/account?amazon=linked"
    assert client.cookies.get("lwa_session") != before  # a new session id at linking
    page = await client.get("/account?amazon=linked")
    assert "Your Amazon account is linked" in page.text
    unlink = form_fields(page.text, "/account/amazon/unlink")
    done = await client.post("/account/amazon/unlink", data=unlink)
    assert done.headers["location"] == "/account?amazon=unlinked"
    page = await client.get("/account")
    assert "Link Amazon account" in page.text


async def test_sec13_attach_from_the_page_needs_the_password_when_not_recent(
    tmp_path: Path,
) -> None:
    import asyncio

    async with running(e2e_settings(tmp_path, recent_auth_seconds=1)) as (_, client):
        await register_password_account(client)
        signin = await client.get("/signin")
        fields = form_fields(signin.text, "/signin") | {"username": "ada", "password": PASSWORD}
        await client.post("/signin", data=fields)
        await asyncio.sleep(1.1)
        page = await client.get("/account")
        link_form = form_fields(page.text, "/account/amazon/link")
        refused = await client.post("/account/amazon/link", data=link_form)
        assert refused.headers["location"] == "/account?amazon_error=reauth"
        wrong = await client.post("/account/amazon/link", data=link_form | {"password": "nope1234"})
        assert wrong.headers["location"] == "/account?amazon_error=wrong-password"
        ok = await client.post("/account/amazon/link", data=link_form | {"password": PASSWORD})
        assert local(ok.headers["location"]).startswith("/_amazon/ap/oa?")
        landed = await through_amazon(client, ok)
        assert landed.headers["location"] == "/account?amazon=linked"


async def test_sec12_unlink_refused_for_an_amazon_only_account(service: Service) -> None:
    _, client = service
    await through_amazon(client, await client.get("/auth/amazon/start"))
    page = await client.get("/account")
    csrf = form_fields(page.text, "/account/password")["csrf_token"]
    refused = await client.post("/account/amazon/unlink", data={"csrf_token": csrf})
    assert refused.headers["location"] == "/account?amazon_error=last-method"
    page = await client.get(refused.headers["location"])
    assert "Amazon is your only way to sign in" in page.text


async def test_sec20_amazon_forms_check_csrf(service: Service) -> None:
    _, client = service
    await through_amazon(client, await client.get("/auth/amazon/start"))
    for path in (
        "/account/amazon/unlink",
        "/account/amazon/link",
        "/auth/amazon/register",
        "/auth/amazon/separate",
    ):
        response = await client.post(path, data={"password": "x"})
        assert response.status_code == 403, path


async def test_sec22_odd_callbacks_and_flow_cookies_get_4xx_pages(service: Service) -> None:
    app, client = service
    await client.get("/auth/amazon/start")
    for query in (
        "",
        "?state=",
        "?code=" + "x" * 5000 + "&state=y",
        "?error=access_denied",
        "?state=%00&code=%FF",
        "?code=a&code=b&state=c&state=d",
    ):
        response = await client.get("/auth/amazon/callback" + query)
        assert 400 <= response.status_code < 500, (query, response.status_code)
        assert "Traceback" not in response.text
    # No flow, or a forged flow cookie: the step is simply gone.
    for cookie in (None, "garbage", "e30." + "0" * 64):
        client.cookies.clear()
        if cookie is not None:
            client.cookies.set(
                "lwa_amazon_flow", cookie, domain="accounts.test", path="/auth/amazon"
            )
        for path in ("/auth/amazon/link", "/auth/amazon/register"):
            page = await client.get(path)
            assert page.status_code == 410, (cookie, path)
    csrf = form_fields((await client.get("/signin")).text, "/signin")["csrf_token"]
    for path in ("/auth/amazon/link", "/auth/amazon/separate"):
        posted = await client.post(path, data={"csrf_token": csrf, "password": "x"})
        assert posted.status_code == 410, path
    assert await count(app, "accounts") == 0


async def test_sec03_amazon_down_during_the_callback(service: Service) -> None:
    app, client = service
    start = await client.get("/auth/amazon/start")
    fault = await client.post(f"{CONTROL}/faults", json={"path": "/auth/o2/token", "status": 503})
    assert fault.status_code == 201
    down = await through_amazon(client, start)
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) > 0
    assert "Amazon is unavailable" in down.text
    assert 'href="/signin"' in down.text
    assert await count(app, "accounts") == 0
    await client.delete(f"{CONTROL}/faults")
    back = await through_amazon(client, await client.get("/auth/amazon/start"))
    assert back.status_code == 303
    assert await count(app, "accounts") == 1


async def test_pages_whose_form_leads_to_amazon_allow_its_origin_in_form_action(
    tmp_path: Path,
) -> None:
    # Chrome and Safari apply form-action to the redirects after a form post: the attach
    # form's 303 to Amazon would be blocked by form-action 'self' alone.
    settings = e2e_settings(tmp_path, lwa_authorize_url="https://www.amazon.com/ap/oa")
    async with running(settings) as (_, client):
        await register_password_account(client)
        signin = await client.get("/signin")
        fields = form_fields(signin.text, "/signin") | {"username": "ada", "password": PASSWORD}
        await client.post("/signin", data=fields)
        account = await client.get("/account")
        policy = account.headers["content-security-policy"]
        assert "form-action 'self' https://www.amazon.com;" in policy
        assert "frame-ancestors 'none'" in policy
        other = await client.get("/signin")
        assert "form-action 'self';" in other.headers["content-security-policy"]
