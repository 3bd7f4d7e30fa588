"""Pre-hijacking, "non-verifying identity provider" (Sudhodanan & Paverd, USENIX Security 2022).

The attack: Amazon does not prove that its customer owns the email on the profile (there is
no ``email_verified`` flag). Mallory opens an Amazon account carrying Ada's email and signs in
with it, hoping to be merged into Ada's local account by email.

What stops it (security.md item 6, ``core.decide``: an email match is only ever
``ConfirmLink``; ``flows.amazon.confirm_link`` needs the local password): when Ada confirmed
her address, Mallory gets a link step and nothing else - no session, no link - however the
email is spelled, and cannot get around the step by registering with Ada's email. When Ada
never confirmed it (issue 13, item 14c), her account is no target at all: Mallory gets an
account of Mallory's own, without Ada's address, and Ada's account is not touched (the mail
that would let Mallory's account claim the address goes to Ada, who ignores it). The
"finish on your phone" variant (Mallory sends Ada the hand-off code so that Ada types her
password) is tests/security/test_sec14b_handoff_phishing.py.
"""

from __future__ import annotations

import pytest

from tests.e2e.amazon_harness import ADA
from tests.security.api_calls import link_flow, poll_flow, register_flow
from tests.security.service import (
    Service,
    add_amazon_customer,
    amazon_sign_in,
    password_token,
    register,
    set_amazon_email,
)


@pytest.mark.parametrize("spelling", ["ada@example.org", "ADA@Example.ORG"])
async def test_prehijack_non_verifying_idp_email_match_gets_no_session(
    service: Service, spelling: str
) -> None:
    ada = await service.client()
    victim = await register(ada, "ada", "ada@example.org")
    await service.confirm_email("ada@example.org")
    ada_token = await password_token(ada, "ada")
    mallory = await service.client()
    fake = await add_amazon_customer(mallory, "Ada Lovelace", spelling)

    outcome = await amazon_sign_in(mallory, fake)
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["result"] == "link_required"
    assert "session" not in outcome.json()
    assert "token" not in outcome.text
    flow_id = outcome.json()["flow"]["id"]

    # Polling, guessing and registering with Ada's email all leave Mallory outside.
    assert "session" not in (await poll_flow(mallory, flow_id)).json()
    guessed = await link_flow(mallory, flow_id, "password123-guess")
    assert guessed.status_code == 401
    assert "session" not in guessed.json()
    as_ada = await register_flow(mallory, flow_id, {"name": "Ada", "email": "ada@example.org"})
    assert as_ada.status_code in (403, 409), as_ada.text
    assert "session" not in as_ada.json()

    assert await service.count("amazon_identities") == 0
    live = await service.count(
        "sessions WHERE account_id = :id AND revoked_at IS NULL", id=victim["id"]
    )
    assert live == 1  # Ada's own, still valid
    assert (await ada.get("/api/v1/me", headers={"Authorization": f"Bearer {ada_token}"})).json()[
        "account"
    ]["amazon_user_id"] is None


async def test_prehijack_non_verifying_idp_unconfirmed_account_is_no_target(
    service: Service,
) -> None:
    ada = await service.client()
    victim = await register(ada, "ada", "ada@example.org")
    ada_token = await password_token(ada, "ada")
    mallory = await service.client()
    fake = await add_amazon_customer(mallory, "Ada Lovelace", "ADA@example.org")

    outcome = await amazon_sign_in(mallory, fake)
    assert outcome.status_code == 201, outcome.text
    mallorys = outcome.json()["account"]
    assert mallorys["id"] != victim["id"]
    assert mallorys["email"] is None  # Ada's address stays Ada's
    assert victim["id"] not in outcome.text
    me = await ada.get("/api/v1/me", headers={"Authorization": f"Bearer {ada_token}"})
    assert me.json()["account"] == victim | {"amazon_user_id": None}
    # The claim mail went to Ada's mailbox, not Mallory's: only Ada could confirm it.
    [claim] = await service.mail_to("ADA@example.org")
    assert "Another account uses this address" in claim.text
    assert await service.count("amazon_identities WHERE account_id = :id", id=victim["id"]) == 0


@pytest.mark.parametrize("confirmed", [True, False])
async def test_prehijack_non_verifying_idp_amazon_only_account_is_refused(
    service: Service, confirmed: bool
) -> None:
    """Ada signed up with her Amazon (no password to prove): Mallory's Amazon account with the
    same email never reaches Ada's account and the answer names no account. Confirmed, the
    address is simply taken (refused, or a separate account without it after a form);
    unconfirmed, it is no target (Mallory's own account, at once, without the address)."""
    ada_tv = await service.client()
    ada_in = await amazon_sign_in(ada_tv, ADA)
    assert ada_in.status_code == 201, ada_in.text
    victim = ada_in.json()["account"]
    if confirmed:
        await service.confirm_email("ada@example.com")
    # Ada's Amazon email moves on; Mallory's new Amazon account takes the old one.
    ada_email_now = "ada@elsewhere.example"
    await set_amazon_email(ada_tv, ADA, ada_email_now)
    mallory = await service.client()
    fake = await add_amazon_customer(mallory, "Ada Lovelace", "ada@example.com")
    refused = await amazon_sign_in(mallory, fake)
    assert victim["id"] not in refused.text
    linked_to = await service.scalar(
        "SELECT account_id FROM amazon_identities WHERE amazon_user_id = :u", u=fake
    )
    if confirmed:
        assert refused.status_code in (200, 409), refused.text
        assert "session" not in refused.json()
        if refused.status_code == 200:  # a separate account may be offered, never this one
            assert refused.json()["result"] == "registration_required"
        assert linked_to is None
    else:
        assert refused.status_code == 201, refused.text
        assert refused.json()["account"]["email"] is None
        assert linked_to == refused.json()["account"]["id"] != victim["id"]
    assert (
        await service.scalar("SELECT email FROM accounts WHERE id = :id", id=victim["id"])
        == "ada@example.com"
    )
