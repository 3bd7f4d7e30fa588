"""Pre-hijacking, "trojan identifier" (Sudhodanan & Paverd, USENIX Security 2022).

The attack: Mallory registers a password account with Ada's email and attaches Mallory's own
Amazon identity to it (a second, hidden way in). If Ada later took the account over - by her
own Amazon sign-in with the same email, or by recovering it - Mallory's Amazon link would
still open it.

What the product does (security.md items 6, 10 and 14c; ``core.decide``): a link is keyed
by the Amazon ``user_id``, never the email, and an unverified address is no target. Ada's
Amazon sign-in never enters the squatted account: it makes Ada an account of her own, and
when she confirms her address it moves there, leaving the squatted account (and Mallory's
Amazon link on it) with nothing of Ada's. Were the squatted address confirmed, her sign-in
would be refused (409 ``email_account_linked_to_other_amazon``) or offered a separate
account: no session and no link on the squatted account, ever. Each Amazon identity reaches
only the account it is linked to. Recovery by e-mail (issue 13) goes to a confirmed address
only, so the squatted account cannot be recovered into by Ada nor used against her.
"""

from __future__ import annotations

from tests.e2e.amazon_harness import ADA
from tests.security.service import (
    ATTACKER_PASSWORD,
    Service,
    add_amazon_customer,
    amazon_sign_in,
    bearer,
    mint,
    password_token,
    register,
)


async def squat_with_trojan(service: Service) -> tuple[dict[str, object], str]:
    """Mallory's account with Ada's email and Mallory's Amazon attached. Returns the account
    and Mallory's Amazon user id."""
    mallory = await service.client()
    mallory_amazon = await add_amazon_customer(mallory, "Mallory", "mallory@evil.example")
    squatted = await register(mallory, "ada", "ada@example.com", ATTACKER_PASSWORD)
    token = await password_token(mallory, "ada", ATTACKER_PASSWORD)
    attached = await mallory.post(
        "/api/v1/me/amazon",
        json={"access_token": await mint(mallory, mallory_amazon)},
        headers=bearer(token),
    )
    assert attached.status_code == 200, attached.text
    return squatted, mallory_amazon


async def test_prehijack_trojan_identifier_victims_amazon_never_enters_the_account(
    service: Service,
) -> None:
    squatted, mallory_amazon = await squat_with_trojan(service)
    ada_tv = await service.client()
    sessions_before = await service.count(
        "sessions WHERE account_id = :id AND revoked_at IS NULL", id=squatted["id"]
    )

    own = await amazon_sign_in(ada_tv, ADA)
    assert own.status_code == 201, own.text  # an account of her own, at once
    ada_account = own.json()["account"]
    assert ada_account["id"] != squatted["id"]
    await service.confirm_email("ada@example.com")
    assert (
        await service.scalar("SELECT email FROM accounts WHERE id = :id", id=ada_account["id"])
        == "ada@example.com"
    )
    assert (
        await service.scalar("SELECT email FROM accounts WHERE id = :id", id=squatted["id"]) is None
    )
    # Ada's identity is linked to her account only; Mallory's link and sessions are as
    # they were.
    assert (
        await service.scalar(
            "SELECT account_id FROM amazon_identities WHERE amazon_user_id = :u", u=ADA
        )
        == ada_account["id"]
    )
    holder = await service.scalar(
        "SELECT amazon_user_id FROM amazon_identities WHERE account_id = :id", id=squatted["id"]
    )
    assert holder == mallory_amazon
    after = await service.count(
        "sessions WHERE account_id = :id AND revoked_at IS NULL", id=squatted["id"]
    )
    assert after == sessions_before


async def test_prehijack_trojan_identifier_attackers_amazon_reaches_only_the_squatted_account(
    service: Service,
) -> None:
    squatted, mallory_amazon = await squat_with_trojan(service)
    ada = await service.client()
    # Ada makes her own account (another address: hers is squatted) and attaches her Amazon.
    own = await register(ada, "ada-l", "ada@home.example")
    token = await password_token(ada, "ada-l")
    attached = await ada.post(
        "/api/v1/me/amazon", json={"access_token": await mint(ada, ADA)}, headers=bearer(token)
    )
    assert attached.status_code == 200, attached.text

    # Each Amazon identity opens exactly the account it was linked to.
    mallory_tv = await service.client()
    mallory_in = await amazon_sign_in(mallory_tv, mallory_amazon)
    assert mallory_in.status_code == 201, mallory_in.text
    assert mallory_in.json()["account"]["id"] == squatted["id"]
    ada_in = await amazon_sign_in(ada, ADA)
    assert ada_in.status_code == 201, ada_in.text
    assert ada_in.json()["account"]["id"] == own["id"]

    # Mallory's Amazon cannot be attached to Ada's account, even from Ada's own session
    # (a phished token): one identity, one account, and the refusal names no account.
    planted = await ada.post(
        "/api/v1/me/amazon",
        json={"access_token": await mint(ada, mallory_amazon)},
        headers=bearer(token),
    )
    assert planted.status_code == 409, planted.text
    assert str(squatted["id"]) not in planted.text
    assert "ada@example.com" not in planted.text
    assert await service.count("amazon_identities WHERE account_id = :id", id=own["id"]) == 1
    linked_to_own = await service.scalar(
        "SELECT amazon_user_id FROM amazon_identities WHERE account_id = :id", id=own["id"]
    )
    assert linked_to_own == ADA
