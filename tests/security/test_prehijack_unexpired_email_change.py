"""Pre-hijacking, "unexpired email change" (Sudhodanan & Paverd, USENIX Security 2022).

The attack: Mallory's account starts a change of its email to Ada's address and leaves it
unconfirmed; once Ada uses that address, Mallory completes the change and the two meet in one
account. Here the email change comes from Amazon: Mallory edits the email of Mallory's Amazon
account (Amazon does not verify it) to Ada's and signs in again.

What stops it (security.md item 14, ``flows.amazon_profile.sync_profile``): a changed Amazon
email moves the local email only for an account without a password and only when no other
account holds it; otherwise it is recorded as ``pending_email`` and nothing else. A pending
email is never the account's email, is never matched when an Amazon identity is looked up by
email, never links, and never blocks Ada from using her own address.
"""

from __future__ import annotations

from tests.e2e.amazon_harness import PASSWORD
from tests.security.service import (
    ATTACKER_PASSWORD,
    Service,
    add_amazon_customer,
    amazon_sign_in,
    bearer,
    me,
    mint,
    password_token,
    register,
    set_amazon_email,
)


async def pending_email_of(service: Service, account_id: str) -> str | None:
    value = await service.scalar(
        "SELECT pending_email FROM amazon_identities WHERE account_id = :id", id=account_id
    )
    return None if value is None else str(value)


async def test_prehijack_unexpired_email_change_onto_a_password_account_stays_pending(
    service: Service,
) -> None:
    ada = await service.client()
    victim = await register(ada, "ada", "ada@example.org")
    mallory = await service.client()
    mallory_amazon = await add_amazon_customer(mallory, "Mallory", "mallory@evil.example")
    first = await amazon_sign_in(mallory, mallory_amazon)  # an Amazon-only account
    assert first.status_code == 201, first.text
    mallory_account = first.json()["account"]

    await set_amazon_email(mallory, mallory_amazon, "ada@example.org")
    again = await amazon_sign_in(mallory, mallory_amazon)
    assert again.status_code == 201, again.text
    assert again.json()["account"]["id"] == mallory_account["id"]
    assert again.json()["account"]["email"] == "mallory@evil.example"
    assert await pending_email_of(service, mallory_account["id"]) == "ada@example.org"

    # Ada's account is untouched: no link, her email, her password, her sessions only.
    assert await service.count("amazon_identities WHERE account_id = :id", id=victim["id"]) == 0
    ada_token = await password_token(ada, "ada")
    assert (await me(ada, ada_token)).json()["account"]["email"] == "ada@example.org"
    mallory_token = again.json()["session"]["token"]
    assert (await me(mallory, mallory_token)).json()["account"]["id"] != victim["id"]
    # Mallory never even got a link step towards Ada's account.
    assert await service.count("pending_flows") == 0


async def test_prehijack_unexpired_email_change_pending_address_never_claims_the_victim(
    service: Service,
) -> None:
    """Mallory's *password* account records Ada's address as pending before Ada arrives;
    Ada then signs up with it through Amazon and Mallory never gets it."""
    mallory = await service.client()
    mallory_amazon = await add_amazon_customer(mallory, "Mallory", "mallory@evil.example")
    mallory_account = await register(mallory, "mallory", "mallory@evil.example", ATTACKER_PASSWORD)
    token = await password_token(mallory, "mallory", ATTACKER_PASSWORD)
    attached = await mallory.post(
        "/api/v1/me/amazon",
        json={"access_token": await mint(mallory, mallory_amazon)},
        headers=bearer(token),
    )
    assert attached.status_code == 200, attached.text
    await set_amazon_email(mallory, mallory_amazon, "ada@example.org")
    signed_in = await amazon_sign_in(mallory, mallory_amazon)
    assert signed_in.json()["account"]["email"] == "mallory@evil.example"
    assert await pending_email_of(service, mallory_account["id"]) == "ada@example.org"

    # Mallory gives the address back at Amazon (Amazon's emails are unique there) and Ada
    # arrives with it: her Amazon sign-in creates her own account (the pending email is no
    # account's email), and the address is hers.
    await set_amazon_email(mallory, mallory_amazon, "mallory@evil.example")
    ada = await service.client()
    ada_amazon = await add_amazon_customer(ada, "Ada", "ada@example.org")
    ada_in = await amazon_sign_in(ada, ada_amazon)
    assert ada_in.status_code == 201, ada_in.text
    assert ada_in.json()["created"] is True
    assert ada_in.json()["account"]["id"] != mallory_account["id"]
    assert ada_in.json()["account"]["email"] == "ada@example.org"

    # Mallory signing in again gets Mallory's own account, with Mallory's own email.
    again = await amazon_sign_in(mallory, mallory_amazon)
    assert again.json()["account"]["id"] == mallory_account["id"]
    assert again.json()["account"]["email"] == "mallory@evil.example"
    owner = await service.scalar(
        "SELECT account_id FROM amazon_identities WHERE amazon_user_id = :u", u=ada_amazon
    )
    assert owner == ada_in.json()["account"]["id"]
    # And a password sign-up with the address is refused only because Ada holds it now.
    other = await service.client()
    taken = await other.post(
        "/api/v1/accounts",
        json={"username": "ada2", "email": "ada@example.org", "name": "A", "password": PASSWORD},
    )
    assert taken.status_code == 409, taken.text


async def test_prehijack_unexpired_email_change_pending_address_does_not_squat(
    service: Service,
) -> None:
    """A pending email blocks nobody: Ada registers a password account with it."""
    mallory = await service.client()
    mallory_amazon = await add_amazon_customer(mallory, "Mallory", "mallory@evil.example")
    await register(mallory, "mallory", "mallory@evil.example", ATTACKER_PASSWORD)
    token = await password_token(mallory, "mallory", ATTACKER_PASSWORD)
    await mallory.post(
        "/api/v1/me/amazon",
        json={"access_token": await mint(mallory, mallory_amazon)},
        headers=bearer(token),
    )
    await set_amazon_email(mallory, mallory_amazon, "ada@example.org")
    await amazon_sign_in(mallory, mallory_amazon)
    ada = await service.client()
    victim = await register(ada, "ada", "ada@example.org")
    assert victim["email"] == "ada@example.org"
    again = await amazon_sign_in(mallory, mallory_amazon)
    assert again.json()["account"]["email"] == "mallory@evil.example"
    assert await service.count("amazon_identities WHERE account_id = :id", id=victim["id"]) == 0
