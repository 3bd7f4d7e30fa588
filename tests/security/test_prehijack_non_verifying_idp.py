"""Pre-hijacking, "non-verifying identity provider" (Sudhodanan & Paverd, USENIX Security 2022).

The attack: Amazon does not prove that its customer owns the email on the profile (there is
no ``email_verified`` flag). Mallory opens an Amazon account carrying Ada's email and signs in
with it, hoping to be merged into Ada's local account by email.

What stops it (security.md item 6, ``core.decide``: an email match is only ever
``ConfirmLink``; ``flows.amazon.confirm_link`` needs the local password): Mallory gets a link
step and nothing else - no session, no link - however the email is spelled, and cannot get
around the step by registering with Ada's email. The "finish on your phone" variant (Mallory
sends Ada the hand-off code so that Ada types her password) is
tests/security/test_sec14b_handoff_phishing.py.
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


async def test_prehijack_non_verifying_idp_amazon_only_account_is_refused(
    service: Service,
) -> None:
    """Ada signed up with her Amazon (no password to prove): Mallory's Amazon account with the
    same email is refused outright and names no account."""
    ada_tv = await service.client()
    ada_in = await amazon_sign_in(ada_tv, ADA)
    assert ada_in.status_code == 201, ada_in.text
    victim = ada_in.json()["account"]
    # Ada's Amazon email moves on; Mallory's new Amazon account takes the old one.
    ada_email_now = "ada@elsewhere.example"
    await set_amazon_email(ada_tv, ADA, ada_email_now)
    mallory = await service.client()
    fake = await add_amazon_customer(mallory, "Ada Lovelace", "ada@example.com")
    refused = await amazon_sign_in(mallory, fake)
    assert refused.status_code in (200, 409), refused.text
    assert "session" not in refused.json()
    assert victim["id"] not in refused.text
    if refused.status_code == 200:  # a separate account may be offered, never this one
        assert refused.json()["result"] == "registration_required"
    assert await service.count("amazon_identities WHERE amazon_user_id = :u", u=fake) == 0
