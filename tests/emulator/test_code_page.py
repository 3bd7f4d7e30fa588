"""A scripted TV completes code-based linking while a person uses the /code page."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from lwa_accounts.emulator.state import EmulatorState
from tests.emulator.conftest import ADA, BASE
from tests.emulator.html_forms import form_with
from tests.emulator.test_device_flow import assert_error, code_pair, poll


async def test_tv_links_through_the_code_page(
    client: httpx.AsyncClient, app: Starlette, state: EmulatorState
) -> None:
    tv = client
    pair = await code_pair(tv)
    assert_error(await poll(tv, pair), 400, "authorization_pending")

    # The person, on a phone: a separate cookie jar, real form posts, CSRF parsed from HTML.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as phone:
        page = await phone.get(pair["verification_uri"])
        assert page.status_code == 200
        assert "Emulated Amazon — not the real amazon.com" in page.text
        entry = form_with(page.text, "/code")
        assert entry.fields["csrf_token"]
        typed = f" {pair['user_code'][:3].lower()}-{pair['user_code'][3:].lower()} "
        signin_page = await phone.post(entry.action, data={**entry.fields, "user_code": typed})
        assert signin_page.status_code == 200, signin_page.text
        signin = form_with(signin_page.text, "/ap/signin", "Sign in")
        wrong = await phone.post(
            signin.action, data={**signin.fields, "email": ADA[0], "password": "nope"}
        )
        assert wrong.status_code == 401
        assert "cannot find an account" in wrong.text
        signin = form_with(wrong.text, "/ap/signin", "Sign in")
        signed_in = await phone.post(
            signin.action, data={**signin.fields, "email": ADA[0], "password": ADA[1]}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/code/confirm"
        confirm = await phone.get("/code/confirm")
        assert "Your name and email address" in confirm.text
        assert "lwa-accounts TV" in confirm.text
        assert_error(await poll(tv, pair), 400, "authorization_pending")  # not before "Allow"
        form = form_with(confirm.text, "/code/confirm")
        done = await phone.post(form.action, data={**form.fields, "decision": "allow"})
        assert done.status_code == 303
        finished = await phone.get(done.headers["location"])
        assert "Go back to your device" in finished.text

    tokens = await poll(tv, pair)
    assert tokens.status_code == 200, tokens.text
    assert_error(await poll(tv, pair), 400, "invalid_code_pair")
    profile = await tv.get(
        "/user/profile", headers={"Authorization": "bearer " + tokens.json()["access_token"]}
    )
    assert profile.json()["email"] == ADA[0]


async def test_code_page_refuses_unknown_codes_and_forged_forms(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    page = await client.get("/code")
    entry = form_with(page.text, "/code")
    unknown = await client.post(entry.action, data={**entry.fields, "user_code": "NOPE42"})
    assert unknown.status_code == 400
    assert "not valid or has expired" in unknown.text
    forged = await client.post("/code", data={"csrf_token": "forged", "user_code": "NOPE42"})
    assert forged.status_code == 403
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as stranger:
        no_cookie = await stranger.post("/code", data=entry.fields)
    assert no_cookie.status_code == 403


async def test_person_can_deny_at_the_code_page(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    pair = await code_pair(client)
    page = await client.get("/code")
    signin_page = await client.post(
        "/code", data={**form_with(page.text, "/code").fields, "user_code": pair["user_code"]}
    )
    demo = form_with(signin_page.text, "/ap/signin", "Grace Hopper")
    await client.post(demo.action, data=demo.fields)
    confirm = await client.get("/code/confirm")
    form = form_with(confirm.text, "/code/confirm")
    done = await client.post(form.action, data={**form.fields, "decision": "deny"})
    assert done.headers["location"] == "/code/done?result=denied"
    assert_error(await poll(client, pair), 400, "access_denied")


async def test_signed_in_person_skips_sign_in_and_expired_code_is_refused(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    first, second = await code_pair(client), await code_pair(client)
    page = await client.get("/code")
    signin_page = await client.post(
        "/code", data={**form_with(page.text, "/code").fields, "user_code": first["user_code"]}
    )
    demo = form_with(signin_page.text, "/ap/signin", "Ada Lovelace")
    await client.post(demo.action, data=demo.fields)
    page = await client.get("/code")
    assert "Signed in as Ada Lovelace" in page.text
    again = await client.post(
        "/code", data={**form_with(page.text, "/code").fields, "user_code": second["user_code"]}
    )
    assert again.status_code == 303
    assert again.headers["location"] == "/code/confirm"
    await client.post("/_emulator/clock", json={"advance_seconds": 700})
    expired = await client.get("/code/confirm")
    assert expired.status_code == 400
    assert "expired" in expired.text
