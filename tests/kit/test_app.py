"""The "Integrate with Your Existing Account System" guide on top of a foreign users table:
the service built with the kit, over HTTP (ASGI), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import code_in, queued_mail
from tests.kit.conftest import fetch, kit_settings, legacy_users

ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"
GRACE = "amzn1.account.GRACEHOPPER0000000000000DEMO"
CONTROL = "/_amazon/_emulator"


async def mint(client: httpx.AsyncClient, user_id: str) -> str:
    response = await client.post(
        f"{CONTROL}/tokens",
        json={"user_id": user_id, "client_id": EMULATED_DEVICE_CLIENT_ID, "scope": "profile"},
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]
    return token


async def sign_in(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/sessions", json={"username": login, "password": password, "device_name": "TV"}
    )


async def me(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    account: dict[str, Any] = body.get("account", body)
    return account


async def stored_hash(url: str, login: str) -> str:
    rows = await fetch(url, "SELECT pw FROM legacy_users WHERE login = :login", login=login)
    value: str = rows[0]["pw"]
    return value


async def user_pk(url: str, login: str) -> int:
    rows = await fetch(url, "SELECT user_pk FROM legacy_users WHERE login = :login", login=login)
    value: int = rows[0]["user_pk"]
    return value


@pytest.mark.parametrize("login", ["django", "sid", "shaun", "dana"])
async def test_foreign_hash_signs_in_and_is_upgraded_to_argon2id(
    kit_client: httpx.AsyncClient, legacy_db: str, login: str
) -> None:
    user = next(u for u in legacy_users() if u.login == login)
    assert not user.pw.startswith("$argon2id$")

    wrong = await sign_in(kit_client, login, user.password + "x")
    assert wrong.status_code == 401, wrong.text
    assert await stored_hash(legacy_db, login) == user.pw  # a wrong password upgrades nothing

    response = await sign_in(kit_client, login.upper(), user.password)  # case-insensitive
    assert response.status_code == 201, response.text
    account = response.json()["account"]
    assert account["id"] == str(await user_pk(legacy_db, login))
    assert account["username"] == login
    assert account["email"] == user.mail

    upgraded = await stored_hash(legacy_db, login)
    assert upgraded.startswith("$argon2id$")
    assert user.password not in upgraded
    # The bearer token resolves through the foreign table.
    assert (await me(kit_client, response.json()["session"]["token"]))["id"] == account["id"]
    # And the upgraded hash is what the next sign-in verifies.
    again = await sign_in(kit_client, user.mail or login, user.password)
    assert again.status_code == 201, again.text
    assert await stored_hash(legacy_db, login) == upgraded


async def test_current_argon2id_hash_is_left_alone(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    before = await stored_hash(legacy_db, "arnold")
    response = await sign_in(kit_client, "arnold", "already-argon-3")
    assert response.status_code == 201, response.text
    assert await stored_hash(legacy_db, "arnold") == before


async def test_inactive_legacy_user_cannot_sign_in(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    response = await sign_in(kit_client, "olga", "mystery")
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "account_disabled"


async def test_deactivated_user_loses_live_sessions(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    response = await sign_in(kit_client, "django", "mystery")
    token = response.json()["session"]["token"]
    await me(kit_client, token)
    await _execute(legacy_db, "UPDATE legacy_users SET active = FALSE WHERE login = 'django'")
    gone = await kit_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401, gone.text


async def _execute(url: str, sql: str) -> None:
    from sqlalchemy import text

    from lwa_accounts.store.engine import create_engine

    engine = create_engine(url, null_pool=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def test_new_amazon_user_gets_a_row_in_their_table_and_a_link(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    before = await fetch(legacy_db, "SELECT count(*) AS n FROM legacy_users")
    response = await kit_client.post(
        "/api/v1/sessions/amazon", json={"access_token": await mint(kit_client, GRACE)}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["result"] == "signed_in"
    assert body["created"] is True

    rows = await fetch(
        legacy_db, "SELECT * FROM legacy_users WHERE mail = :mail", mail="grace@example.com"
    )
    assert len(rows) == 1
    row = rows[0]
    assert body["account"]["id"] == str(row["user_pk"])
    assert row["full_name"] == "Grace Hopper"
    assert row["pw"] == "!"  # no password: the mapping's "unusable" marker
    assert bool(row["active"]) is True
    assert row["joined"] is not None
    count = await fetch(legacy_db, "SELECT count(*) AS n FROM legacy_users")
    assert count[0]["n"] == before[0]["n"] + 1

    links = await fetch(legacy_db, "SELECT account_id, amazon_user_id FROM amazon_identities")
    assert links == [{"account_id": str(row["user_pk"]), "amazon_user_id": GRACE}]
    account = await me(kit_client, body["session"]["token"])
    assert account["amazon_user_id"] == GRACE

    # A returning Amazon user is signed in to the same row; nothing new is created.
    again = await kit_client.post(
        "/api/v1/sessions/amazon", json={"access_token": await mint(kit_client, GRACE)}
    )
    assert again.status_code == 201, again.text
    assert again.json()["created"] is False
    assert again.json()["account"]["id"] == str(row["user_pk"])
    count = await fetch(legacy_db, "SELECT count(*) AS n FROM legacy_users")
    assert count[0]["n"] == before[0]["n"] + 1

    # An Amazon-only user has no password to sign in with.
    refused = await sign_in(kit_client, row["login"], "!")
    assert refused.status_code == 401, refused.text


async def test_an_unconfirmed_legacy_address_is_no_link_target_and_is_claimed_by_its_owner(
    kit_client: httpx.AsyncClient, legacy_db: str, tmp_path: Path
) -> None:
    """Issue 13 over the company's table: "sid" never confirmed sid@example.com (its
    mail_verified is false), so an Amazon sign-in with that address gets an account of its
    own without it; confirming the address moves it in the legacy table, in one rule."""
    created = await kit_client.post(
        f"{CONTROL}/customers",
        json={"name": "Sid A", "email": "sid@example.com", "password": "amazon-pass"},
    )
    amazon_user = created.json()["user_id"]
    response = await kit_client.post(
        "/api/v1/sessions/amazon", json={"access_token": await mint(kit_client, amazon_user)}
    )
    assert response.status_code == 201, response.text
    new = response.json()["account"]
    assert new["email"] is None
    sid_pk = str(await user_pk(legacy_db, "sid"))
    assert new["id"] != sid_pk
    database = Database(legacy_db, settings=kit_settings(tmp_path, legacy_db))
    try:
        [claim] = await queued_mail(database, "sid@example.com")
    finally:
        await database.dispose()
    confirmed = await kit_client.post(
        "/api/v1/me/email-verification",
        json={"code": code_in(claim)},
        headers={"Authorization": f"Bearer {response.json()['session']['token']}"},
    )
    assert confirmed.status_code == 200, confirmed.text
    rows = await fetch(
        legacy_db,
        "SELECT user_pk, mail, mail_verified FROM legacy_users WHERE login IN ('sid', :new)",
        new=new["username"],
    )
    by_pk = {str(row["user_pk"]): (row["mail"], bool(row["mail_verified"])) for row in rows}
    assert by_pk == {sid_pk: (None, False), new["id"]: ("sid@example.com", True)}


async def test_amazon_email_of_a_legacy_user_must_prove_the_legacy_password(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    response = await kit_client.post(
        "/api/v1/sessions/amazon", json={"access_token": await mint(kit_client, ADA)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] == "link_required"
    flow_id = body["flow"]["id"]
    assert await fetch(legacy_db, "SELECT * FROM amazon_identities") == []

    wrong = await kit_client.post(
        "/api/v1/flows/link", json={"flow_id": flow_id, "password": "nope"}
    )
    assert wrong.status_code == 401, wrong.text
    assert await fetch(legacy_db, "SELECT * FROM amazon_identities") == []

    linked = await kit_client.post(
        "/api/v1/flows/link", json={"flow_id": flow_id, "password": "s3cr3t"}
    )
    assert linked.status_code == 201, linked.text
    ada_pk = str(await user_pk(legacy_db, "AdaL"))
    assert linked.json()["account"]["id"] == ada_pk
    links = await fetch(legacy_db, "SELECT account_id, amazon_user_id FROM amazon_identities")
    assert links == [{"account_id": ada_pk, "amazon_user_id": ADA}]
    # Proving the password upgraded its Django hash too; no second user was created.
    assert (await stored_hash(legacy_db, "AdaL")).startswith("$argon2id$")
    ada_rows = await fetch(
        legacy_db, "SELECT count(*) AS n FROM legacy_users WHERE lower(mail) = 'ada@example.com'"
    )
    assert ada_rows[0]["n"] == 1

    # From now on Amazon signs Ada straight in to her legacy account.
    again = await kit_client.post(
        "/api/v1/sessions/amazon", json={"access_token": await mint(kit_client, ADA)}
    )
    assert again.status_code == 201, again.text
    assert again.json()["account"]["id"] == ada_pk


async def test_registration_writes_their_table_and_refuses_taken_names(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    taken = await kit_client.post(
        "/api/v1/accounts",
        json={
            "username": "adal",  # "AdaL" in their table: taken whatever the case
            "email": "new@example.com",
            "name": "New",
            "password": "a-long-new-password-1",
        },
    )
    assert taken.status_code == 409, taken.text
    assert taken.json()["code"] == "username_taken"
    email_taken = await kit_client.post(
        "/api/v1/accounts",
        json={
            "username": "newbie",
            "email": "DJANGO@example.com",
            "name": "New",
            "password": "a-long-new-password-1",
        },
    )
    assert email_taken.status_code == 409, email_taken.text
    assert email_taken.json()["code"] == "email_taken"

    created = await kit_client.post(
        "/api/v1/accounts",
        json={
            "username": "newbie",
            "email": "newbie@example.com",
            "name": "New Bie",
            "password": "a-long-new-password-1",
        },
    )
    assert created.status_code == 201, created.text
    rows = await fetch(legacy_db, "SELECT * FROM legacy_users WHERE login = 'newbie'")
    assert len(rows) == 1
    assert rows[0]["mail"] == "newbie@example.com"
    assert rows[0]["pw"].startswith("$argon2id$")
    assert created.json()["account"]["id"] == str(rows[0]["user_pk"])
    assert (await sign_in(kit_client, "newbie", "a-long-new-password-1")).status_code == 201
