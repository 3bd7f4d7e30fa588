"""Pre-hijacking, classic-federated merge (Sudhodanan & Paverd 2022), and email squatting.

The attacker registers the victim's email address (never verified) with a password of
their own, before the victim ever comes. When the victim then signs in with Amazon (same
email), the service must neither merge the two (no session on the attacker's account, no
link to it: security.md 6) nor leave the victim stuck in front of a password they cannot
know: "create a separate account instead" turns the step into a registration of a new
account, linked to the victim's Amazon identity, with another email. The attacker's
account stays exactly as it was, without the Amazon link. On the web (link page button,
CSRF-checked) and in the API (``alternatives: ["register"]`` on ``link_required``, then
the register step with the flow id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from lwa_accounts.core.models import Account
from tests.e2e.amazon_harness import (
    ADA,
    GRACE,
    PASSWORD,
    amazon_sign_in,
    bearer,
    count,
    database_of,
    e2e_settings,
    mint,
    password_token,
    register_password_account,
    running,
)
from tests.security.api_calls import register_flow
from tests.web.test_amazon_pages import form_fields, through_amazon

VICTIM_EMAIL = "ada@example.com"  # the emulated Amazon customer Ada's email
OTHER_EMAIL = "ada@home.example"
COOKIE = "lwa_session"
FLOW_SWITCHED = "amazon.flow_switched"  # the audit event of the switch


async def _account(app: FastAPI, account_id: str) -> Account:
    async with database_of(app).transaction() as stores:
        account = await stores.accounts.get(account_id)
    assert account is not None
    return account


async def _amazon_holder(app: FastAPI) -> str | None:
    async with database_of(app).transaction() as stores:
        link = await stores.identities.get_by_amazon_user_id(ADA)
    return link.account_id if link else None


async def _untouched(app: FastAPI, squatter: dict[str, Any], before: Account) -> None:
    after = await _account(app, squatter["id"])
    assert after == before  # email, name, password, flags: all as the attacker left them
    async with database_of(app).transaction() as stores:
        assert await stores.identities.get_for_account(squatter["id"]) is None
        kinds = [event.kind for event in await stores.audit.list(limit=200)]
    assert FLOW_SWITCHED in kinds


async def test_prehijack_classic_federated_merge_web(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client):
        squatter = await register_password_account(client, username="mallory", email=VICTIM_EMAIL)
        before = await _account(app, squatter["id"])
        attacker_token = await password_token(client, "mallory")  # the attacker's own session

        landed = await through_amazon(client, await client.get("/auth/amazon/start"))
        assert landed.headers["location"] == "/auth/amazon/link"
        assert client.cookies.get(COOKIE) is None  # never a session on the attacker's account
        page = await client.get("/auth/amazon/link")
        assert "Create a separate account instead" in page.text
        separate = form_fields(page.text, "/auth/amazon/separate")
        assert (
            await client.post("/auth/amazon/separate", data={"x": "1"})
        ).status_code == 403  # CSRF
        switched = await client.post("/auth/amazon/separate", data=separate)
        assert switched.status_code == 303, switched.text
        assert switched.headers["location"].startswith("/auth/amazon/register")
        # The link step is over for this flow: the squatter's password no longer links it.
        link_form = form_fields(page.text, "/auth/amazon/link") | {"password": PASSWORD}
        stale = await client.post("/auth/amazon/link", data=link_form)
        assert stale.status_code == 303
        assert stale.headers["location"] == "/auth/amazon/register"
        assert await _amazon_holder(app) is None

        form_page = await client.get(switched.headers["location"])
        assert form_page.status_code == 200
        assert "Create a separate account" in form_page.text
        fields = form_fields(form_page.text, "/auth/amazon/register")
        assert fields["email"] == ""  # the taken email is not offered
        taken = await client.post("/auth/amazon/register", data=fields | {"email": VICTIM_EMAIL})
        assert taken.status_code == 409
        done = await client.post("/auth/amazon/register", data=fields | {"email": OTHER_EMAIL})
        assert done.status_code == 303, done.text
        assert client.cookies.get(COOKIE)

        holder = await _amazon_holder(app)
        assert holder is not None
        assert holder != squatter["id"]
        victim = await _account(app, holder)
        assert victim.email == OTHER_EMAIL
        assert await count(app, "accounts") == 2
        await _untouched(app, squatter, before)
        assert (await client.get("/api/v1/me", headers=bearer(attacker_token))).status_code == 200


async def test_prehijack_classic_federated_merge_api(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client):
        squatter = await register_password_account(client, username="mallory", email=VICTIM_EMAIL)
        before = await _account(app, squatter["id"])

        step = await amazon_sign_in(client, await mint(client))
        assert step.status_code == 200, step.text
        body = step.json()
        assert body["result"] == "link_required"
        assert "session" not in body
        assert body["flow"]["alternatives"] == ["register"]
        flow_id = body["flow"]["id"]

        taken = await register_flow(client, flow_id, {"name": "Ada", "email": VICTIM_EMAIL})
        assert taken.status_code == 409, taken.text
        assert taken.json()["code"] == "email_taken"
        created = await register_flow(client, flow_id, {"name": "Ada", "email": OTHER_EMAIL})
        assert created.status_code == 201, created.text
        signed_in = created.json()
        assert signed_in["created"] is True
        assert signed_in["account"]["id"] != squatter["id"]
        assert signed_in["account"]["email"] == OTHER_EMAIL
        assert signed_in["account"]["amazon_user_id"] == ADA
        again = await register_flow(client, flow_id, {"name": "Ada", "email": "x@y.example"})
        assert again.status_code == 410  # single use

        # From now on the victim's Amazon sign-in lands in the victim's own account.
        back = await amazon_sign_in(client, await mint(client))
        assert back.status_code == 201, back.text
        assert back.json()["account"]["id"] == signed_in["account"]["id"]
        assert await _amazon_holder(app) == signed_in["account"]["id"]
        await _untouched(app, squatter, before)


async def test_prehijack_squatter_who_linked_an_amazon_account_does_not_block(
    tmp_path: Path,
) -> None:
    """The squatter also linked an Amazon account of their own (Grace's) to the account
    holding the victim's email: the victim used to get a dead-end 409; now a registration
    of a separate account, without that email."""
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
        assert step.status_code == 200, step.text  # was 409 email_account_linked_to_other_amazon
        body = step.json()
        assert body["result"] == "registration_required"
        assert body["flow"]["prefill"]["email"] is None
        assert "email" in body["flow"]["required"]
        flow_id = body["flow"]["id"]
        taken = await register_flow(client, flow_id, {"name": "Ada", "email": VICTIM_EMAIL})
        assert taken.status_code == 409, taken.text
        created = await register_flow(client, flow_id, {"name": "Ada", "email": OTHER_EMAIL})
        assert created.status_code == 201, created.text
        assert created.json()["account"]["id"] != squatter["id"]
        assert created.json()["account"]["amazon_user_id"] == ADA
        assert await _account(app, squatter["id"]) == before
        async with database_of(app).transaction() as stores:
            kept = await stores.identities.get_for_account(squatter["id"])
        assert kept is not None
        assert kept.amazon_user_id == GRACE  # the squatter's own link, untouched
