"""Pre-hijacking, classic-federated merge (Sudhodanan & Paverd 2022), and email squatting.

The attacker registers the victim's email address (never verified) with a password of
their own, before the victim ever comes. When the victim then signs in with Amazon (same
email), the service must neither merge the two (no session on the attacker's account, no
link to it: security.md 6) nor put the victim in front of the attacker's password.

Since issue 13 an unverified address is no target at all (``core.decide``, security.md
item 14c): the victim is never asked for a password and gets an account of their own at
once, linked to their Amazon identity, without the squatted address; the verification mail
goes to the address, and when the victim confirms it their account takes it and the
squatter's loses it (the verified claim wins, ``flows/email_claims.py``). The attacker's
account keeps its password, its sessions and nothing of the victim's. On the web and in
the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from lwa_accounts.core.models import Account
from lwa_accounts.testing.mail import code_in, queued_mail
from tests.e2e.amazon_harness import (
    ADA,
    GRACE,
    PASSWORD,
    amazon_sign_in,
    bearer,
    confirm_email,
    count,
    database_of,
    e2e_settings,
    mint,
    password_token,
    register_password_account,
    running,
)
from tests.web.test_amazon_pages import through_amazon

VICTIM_EMAIL = "ada@example.com"  # the emulated Amazon customer Ada's email
COOKIE = "lwa_session"


async def _account(app: FastAPI, account_id: str) -> Account:
    async with database_of(app).transaction() as stores:
        account = await stores.accounts.get(account_id)
    assert account is not None
    return account


async def _amazon_holder(app: FastAPI) -> str | None:
    async with database_of(app).transaction() as stores:
        link = await stores.identities.get_by_amazon_user_id(ADA)
    return link.account_id if link else None


async def _squatter_untouched(app: FastAPI, squatter: dict[str, Any], before: Account) -> None:
    assert await _account(app, squatter["id"]) == before  # email, password, flags: as left
    async with database_of(app).transaction() as stores:
        link = await stores.identities.get_for_account(squatter["id"])
    assert link is None or link.amazon_user_id != ADA


async def _squatter_lost_the_address(
    app: FastAPI, squatter: dict[str, Any], victim_id: str
) -> None:
    lost = await _account(app, squatter["id"])
    assert (lost.email, lost.email_verified) == (None, False)
    assert lost.password_hash is not None  # nothing else of it changed
    won = await _account(app, victim_id)
    assert (won.email, won.email_verified) == (VICTIM_EMAIL, True)
    async with database_of(app).transaction() as stores:
        released = [e for e in await stores.audit.list(limit=200) if e.kind == "email.released"]
    assert [e.account_id for e in released] == [squatter["id"]]


async def test_prehijack_classic_federated_merge_web(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client):
        squatter = await register_password_account(client, username="mallory", email=VICTIM_EMAIL)
        before = await _account(app, squatter["id"])
        attacker_token = await password_token(client, "mallory")  # the attacker's own session

        landed = await through_amazon(client, await client.get("/auth/amazon/start"))
        # No link step, no password asked: the victim's own new account, signed in.
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == "/account"
        assert client.cookies.get(COOKIE)
        victim_id = await _amazon_holder(app)
        assert victim_id is not None
        assert victim_id != squatter["id"]
        assert (await _account(app, victim_id)).email is None  # the squatter holds it, for now
        page = await client.get("/account")
        assert "Waiting for you to confirm <strong>ada@example.com</strong>" in page.text
        await _squatter_untouched(app, squatter, before)

        # The victim opens the mail sent to the address and confirms: the claim wins.
        claim = (await queued_mail(database_of(app), VICTIM_EMAIL))[-1]
        assert '"mallory"' not in claim.text  # the claim names the victim's account
        await confirm_email(app, VICTIM_EMAIL)
        await _squatter_lost_the_address(app, squatter, victim_id)
        assert await count(app, "accounts") == 2
        # The attacker's session still opens only the attacker's own (now address-less) one.
        me = await client.get("/api/v1/me", headers=bearer(attacker_token))
        assert me.json()["account"]["id"] == squatter["id"]
        assert me.json()["account"]["amazon_user_id"] is None


async def test_prehijack_classic_federated_merge_api(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client):
        squatter = await register_password_account(client, username="mallory", email=VICTIM_EMAIL)
        before = await _account(app, squatter["id"])

        step = await amazon_sign_in(client, await mint(client))
        assert step.status_code == 201, step.text
        body = step.json()
        assert (body["result"], body["created"]) == ("signed_in", True)
        assert "flow" not in body  # no link step: nothing asks for the squatter's password
        victim = body["account"]
        assert victim["id"] != squatter["id"]
        assert (victim["email"], victim["amazon_user_id"]) == (None, ADA)
        await _squatter_untouched(app, squatter, before)

        # The victim reads the mail on another device and types its code on the TV.
        code = code_in((await queued_mail(database_of(app), VICTIM_EMAIL))[-1])
        confirmed = await client.post(
            "/api/v1/me/email-verification",
            json={"code": code},
            headers=bearer(body["session"]["token"]),
        )
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["account"]["email"] == VICTIM_EMAIL
        await _squatter_lost_the_address(app, squatter, victim["id"])

        # From now on the victim's Amazon sign-in lands in the victim's own account.
        back = await amazon_sign_in(client, await mint(client))
        assert back.status_code == 201, back.text
        assert back.json()["account"]["id"] == victim["id"]
        # And the squatter cannot take the address back: it is a verified one now.
        retaken = await client.post(
            "/api/v1/accounts",
            json={"username": "mallory2", "email": VICTIM_EMAIL, "name": "M", "password": PASSWORD},
        )
        assert (retaken.status_code, retaken.json()["code"]) == (409, "email_taken")


async def test_prehijack_squatter_who_linked_an_amazon_account_does_not_block(
    tmp_path: Path,
) -> None:
    """The squatter also linked an Amazon account of their own (Grace's) to the account
    holding the victim's email: the victim used to get a dead end, then a registration
    form; now an account at once, and the address once confirmed."""
    async with running(e2e_settings(tmp_path)) as (app, client):
        squatter = await register_password_account(client, username="mallory", email=VICTIM_EMAIL)
        attacker_token = await password_token(client, "mallory")
        attached = await client.post(
            "/api/v1/me/amazon",
            json={"access_token": await mint(client, GRACE), "password": PASSWORD},
            headers=bearer(attacker_token),
        )
        assert attached.status_code == 200, attached.text
        before = await _account(app, squatter["id"])

        step = await amazon_sign_in(client, await mint(client))
        assert step.status_code == 201, step.text
        victim = step.json()["account"]
        assert victim["id"] != squatter["id"]
        assert victim["amazon_user_id"] == ADA
        await _squatter_untouched(app, squatter, before)
        await confirm_email(app, VICTIM_EMAIL)
        await _squatter_lost_the_address(app, squatter, victim["id"])
        async with database_of(app).transaction() as stores:
            kept = await stores.identities.get_for_account(squatter["id"])
        assert kept is not None
        assert kept.amazon_user_id == GRACE  # the squatter's own link, untouched
