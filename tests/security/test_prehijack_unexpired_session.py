"""Pre-hijacking, "unexpired session" (Sudhodanan & Paverd, USENIX Security 2022).

The attack: Mallory registers a password account with Ada's email before Ada does and keeps
a session in it open (a browser cookie and a device token). Later the account's password is
proven to link Ada's Amazon identity. If Mallory's sessions survived, Mallory would be inside
the account Ada now uses.

What stops it (security.md items 6 and 9): Ada's Amazon sign-in alone never enters the
account (she gets ``link_required``, no session), and a link made by proving the password of
an account whose email was never verified ends every other session of that account
(``flows.amazon._link_proven`` -> ``sessions.revoke_all``). Mallory cannot know a password
Ada sets later; the proof here is that whoever proves the password to link ends up the only
one signed in.
"""

from __future__ import annotations

from tests.e2e.amazon_harness import ADA
from tests.security.api_calls import link_flow, poll_flow
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


async def test_prehijack_unexpired_session_ends_when_the_password_links_amazon(
    service: Service,
) -> None:
    mallory_tv = await service.client()
    mallory_browser = await service.client()
    ada_tv = await service.client()

    # Mallory squats Ada's email and keeps two sessions open.
    squatted = await register(mallory_tv, "ada", "ada@example.com", ATTACKER_PASSWORD)
    mallory_token = await password_token(mallory_tv, "ada", ATTACKER_PASSWORD)
    await browser_sign_in(mallory_browser, "ada", ATTACKER_PASSWORD)
    assert (await mallory_browser.get("/account")).status_code == 200

    # Ada's own Amazon sign-in (same email) never enters the account by itself.
    outcome = await amazon_sign_in(ada_tv, ADA)
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["result"] == "link_required"
    assert "session" not in outcome.json()
    flow_id = outcome.json()["flow"]["id"]
    pending = await poll_flow(ada_tv, flow_id)
    assert pending.status_code == 200
    assert "session" not in pending.json()
    assert (await me(mallory_tv, mallory_token)).status_code == 200  # nothing changed yet

    # The account's password is proven on the link step: the link is made...
    linked = await link_flow(ada_tv, flow_id, ATTACKER_PASSWORD)
    assert linked.status_code == 201, linked.text
    assert linked.json()["account"]["id"] == squatted["id"]
    assert linked.json()["account"]["amazon_user_id"] == ADA
    prover_token = linked.json()["session"]["token"]

    # ...and every session opened before it is gone, device and browser alike.
    assert (await me(mallory_tv, mallory_token)).status_code == 401
    after = await mallory_browser.get("/account")
    assert after.status_code in (302, 303), after.text
    assert "/signin" in after.headers["location"]
    assert (await me(ada_tv, prover_token)).status_code == 200
    live = await service.count(
        "sessions WHERE account_id = :id AND revoked_at IS NULL", id=squatted["id"]
    )
    assert live == 1


async def test_prehijack_unexpired_session_wrong_password_or_replay_gives_nothing(
    service: Service,
) -> None:
    """Failed link attempts change nothing: no link, no session, the flow stays single-use."""
    mallory = await service.client()
    ada_tv = await service.client()
    squatted = await register(mallory, "ada", "ada@example.com", ATTACKER_PASSWORD)
    flow_id = (await amazon_sign_in(ada_tv, ADA)).json()["flow"]["id"]

    wrong = await link_flow(ada_tv, flow_id, "ada-guesses-this-1")
    assert wrong.status_code == 401
    assert "session" not in wrong.json()
    assert await service.count("amazon_identities") == 0
    assert await service.count("sessions WHERE account_id = :id", id=squatted["id"]) == 0

    linked = await link_flow(ada_tv, flow_id, ATTACKER_PASSWORD)
    assert linked.status_code == 201
    token = linked.json()["session"]["token"]
    # Replaying the flow (e.g. from a copied id) neither links again nor opens a session.
    replay = await link_flow(mallory, flow_id, ATTACKER_PASSWORD)
    assert replay.status_code == 410
    assert "session" not in replay.json()
    assert await service.count("amazon_identities") == 1
    assert (await ada_tv.get("/api/v1/sessions", headers=bearer(token))).status_code == 200
