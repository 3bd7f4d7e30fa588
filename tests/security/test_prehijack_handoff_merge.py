"""Pre-hijacking, classic-federated merge through a hand-off code the attacker sees.

The attack: Mallory registers a password account with Ada's email. Ada signs in with her
Amazon on her TV, gets ``link_required`` and asks to "finish on your phone"; the TV shows a
hand-off code. Mallory reads the code off the screen (or the QR code), opens /activate and
types *Mallory's* password. If the link were made, Ada's TV would be signed in to an account
Mallory controls, and Ada's Amazon identity would stay linked to it: every later Amazon
sign-in of Ada's would land in Mallory's account.

Since issue 13 an unverified squat is no target: Ada's TV is signed in to an account of
her own at once, and no hand-off code is ever shown. What is left is an address Mallory
did confirm (a mailbox they share, say): then the link step exists, and this is the
mirror image of the phishing chain of security.md item 14b
(tests/security/test_sec14b_handoff_phishing.py: Mallory's TV, Ada's phone): a password
typed on another device must not link the TV's Amazon identity unless that device also
proves the same Amazon identity. Mallory cannot prove Ada's.
"""

from __future__ import annotations

from tests.e2e.amazon_harness import ADA
from tests.security.api_calls import handoff_flow, poll_flow
from tests.security.service import (
    ATTACKER_PASSWORD,
    Service,
    amazon_sign_in,
    form_post,
    register,
)


async def test_prehijack_an_unconfirmed_squat_never_shows_a_handoff_code(
    service: Service,
) -> None:
    mallory_phone = await service.client()
    squatted = await register(mallory_phone, "ada", "ada@example.com", ATTACKER_PASSWORD)
    ada_tv = await service.client()
    outcome = await amazon_sign_in(ada_tv, ADA)
    assert outcome.status_code == 201, outcome.text
    assert "flow" not in outcome.json()
    assert outcome.json()["account"]["id"] != squatted["id"]
    assert await service.count("device_grants WHERE purpose = 'handoff'") == 0


async def test_prehijack_classic_federated_merge_through_a_seen_handoff_code(
    service: Service,
) -> None:
    mallory_phone = await service.client()
    squatted = await register(mallory_phone, "ada", "ada@example.com", ATTACKER_PASSWORD)
    await service.confirm_email("ada@example.com")  # a mailbox Mallory can read too
    ada_tv = await service.client()
    outcome = await amazon_sign_in(ada_tv, ADA)
    assert outcome.json()["result"] == "link_required", outcome.text
    flow_id = outcome.json()["flow"]["id"]
    offered = await handoff_flow(ada_tv, flow_id)
    assert offered.status_code == 201, offered.text
    code = offered.json()["code"]  # on Ada's TV screen, seen by Mallory

    await form_post(mallory_phone, "/activate", {"code": code})
    await form_post(mallory_phone, "/activate/link", {"code": code, "password": ATTACKER_PASSWORD})

    # Ada's Amazon identity must not end up linked to the account Mallory controls, and
    # Ada's TV must not be signed in to it.
    assert await service.count("amazon_identities WHERE amazon_user_id = :u", u=ADA) == 0
    polled = await poll_flow(ada_tv, flow_id)
    assert "session" not in polled.json(), polled.text
    live = await service.count(
        "sessions WHERE account_id = :id AND revoked_at IS NULL", id=squatted["id"]
    )
    assert live == 0
