"""forget_account: what ON DELETE CASCADE did, for a user deleted from the foreign table."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from lwa_accounts.kit.cleanup import forget_account
from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID
from lwa_accounts.store.engine import create_engine
from tests.kit.conftest import fetch

GRACE = "amzn1.account.GRACEHOPPER0000000000000DEMO"


async def test_deleted_user_leaves_nothing_behind(
    kit_client: httpx.AsyncClient, legacy_db: str
) -> None:
    minted = await kit_client.post(
        "/_amazon/_emulator/tokens",
        json={"user_id": GRACE, "client_id": EMULATED_DEVICE_CLIENT_ID, "scope": "profile"},
    )
    signed_in = await kit_client.post(
        "/api/v1/sessions/amazon", json={"access_token": minted.json()["access_token"]}
    )
    assert signed_in.status_code == 201, signed_in.text
    account_id = signed_in.json()["account"]["id"]
    other = await kit_client.post(
        "/api/v1/sessions", json={"username": "django", "password": "mystery"}
    )
    assert other.status_code == 201

    engine = create_engine(legacy_db, null_pool=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM legacy_users WHERE user_pk = :pk"), {"pk": int(account_id)}
            )
            removed = await forget_account(conn, account_id)
    finally:
        await engine.dispose()
    assert removed == 2  # the link and the session
    assert await fetch(legacy_db, "SELECT * FROM amazon_identities") == []
    sessions = await fetch(legacy_db, "SELECT account_id FROM sessions")
    assert sessions == [{"account_id": other.json()["account"]["id"]}]  # others untouched
    gone = await kit_client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {signed_in.json()['session']['token']}"}
    )
    assert gone.status_code == 401

    # Grace comes back through Amazon: a fresh row and link, not a dangling one.
    again = await kit_client.post(
        "/api/v1/sessions/amazon",
        json={
            "access_token": (
                await kit_client.post(
                    "/_amazon/_emulator/tokens",
                    json={"user_id": GRACE, "client_id": EMULATED_DEVICE_CLIENT_ID},
                )
            ).json()["access_token"]
        },
    )
    assert again.status_code == 201, again.text
    assert again.json()["created"] is True
