"""Pre-hijacking, "unexpired session" (Sudhodanan & Paverd, USENIX Security 2022).

The attack: Mallory registers a password account with Ada's email before Ada does and keeps
a session in it open (a browser cookie and a device token). If Ada later came to use that
account (by a link step, or by recovering it), Mallory's sessions would be inside it.

What stops it: an unverified address is no target (issue 13, security.md items 9 and 14c):
Ada's Amazon sign-in never leads into the squatted account at all, but to an account of
her own, and when Ada confirms the address it moves to her account; Mallory's sessions
open only Mallory's account, which is left without the address. A link step exists only
for an account whose address was confirmed; there, a wrong password or a replayed flow
gives nothing.
"""

from __future__ import annotations

from tests.e2e.amazon_harness import ADA
from tests.security.api_calls import link_flow
from tests.security.service import (
    ATTACKER_PASSWORD,
    Service,
    amazon_sign_in,
    bearer,
    browser_sign_in,
    me,
    password_token,
    register,
)


async def test_prehijack_unexpired_session_never_reaches_the_victims_account(
    service: Service,
) -> None:
    mallory_tv = await service.client()
    mallory_browser = await service.client()
    ada_tv = await service.client()

    # Mallory squats Ada's email and keeps two sessions open.
    squatted = await register(mallory_tv, "ada", "ada@example.com", ATTACKER_PASSWORD)
    mallory_token = await password_token(mallory_tv, "ada", ATTACKER_PASSWORD)
    await browser_sign_in(mallory_browser, "ada", ATTACKER_PASSWORD)

    # Ada's own Amazon sign-in (same email) lands in an account of her own.
    outcome = await amazon_sign_in(ada_tv, ADA)
    assert outcome.status_code == 201, outcome.text
    ada = outcome.json()["account"]
    assert ada["id"] != squatted["id"]
    ada_token = outcome.json()["session"]["token"]
    await service.confirm_email("ada@example.com")  # and takes her address
    assert (await me(ada_tv, ada_token)).json()["account"]["email"] == "ada@example.com"

    # Mallory's sessions still work, but only on Mallory's account, which lost the address.
    for seen in (
        (await me(mallory_tv, mallory_token)).json()["account"],
        (await mallory_browser.get("/api/v1/me")).json()["account"],
    ):
        assert seen["id"] == squatted["id"]
        assert (seen["email"], seen["amazon_user_id"]) == (None, None)
    mallory_page = await mallory_browser.get("/account")
    assert "ada@example.com" not in mallory_page.text
    live = await service.count(
        "sessions WHERE account_id = :id AND revoked_at IS NULL", id=ada["id"]
    )
    assert live == 1  # Ada's own, the only one in her account


async def test_prehijack_unexpired_session_wrong_password_or_replay_gives_nothing(
    service: Service,
) -> None:
    """On a link step (the address confirmed), failed attempts change nothing: no link, no
    session, and the flow stays single-use."""
    owner = await service.client()
    stranger = await service.client()
    ada_tv = await service.client()
    account = await register(owner, "ada", "ada@example.com", ATTACKER_PASSWORD)
    await service.confirm_email("ada@example.com")
    flow_id = (await amazon_sign_in(ada_tv, ADA)).json()["flow"]["id"]

    wrong = await link_flow(ada_tv, flow_id, "ada-guesses-this-1")
    assert wrong.status_code == 401
    assert "session" not in wrong.json()
    assert await service.count("amazon_identities") == 0
    assert await service.count("sessions WHERE account_id = :id", id=account["id"]) == 0

    linked = await link_flow(ada_tv, flow_id, ATTACKER_PASSWORD)
    assert linked.status_code == 201
    token = linked.json()["session"]["token"]
    # Replaying the flow (e.g. from a copied id) neither links again nor opens a session.
    replay = await link_flow(stranger, flow_id, ATTACKER_PASSWORD)
    assert replay.status_code == 410
    assert "session" not in replay.json()
    assert await service.count("amazon_identities") == 1
    assert (await ada_tv.get("/api/v1/sessions", headers=bearer(token))).status_code == 200
