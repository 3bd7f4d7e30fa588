"""Pre-hijacking, "trojan identifier" (Sudhodanan & Paverd, USENIX Security 2022).

The attack: Mallory registers a password account with Ada's email and attaches Mallory's own
Amazon identity to it (a second, hidden way in). If Ada later took the account over - by her
own Amazon sign-in with the same email, or by recovering it - Mallory's Amazon link would
still open it.

What the product does today (security.md items 6, 10; ``core.decide``): a link is keyed by the
Amazon ``user_id``, never the email. Ada's Amazon sign-in finds an email account already
linked to a *different* Amazon identity and is refused (409
``email_account_linked_to_other_amazon``; a later release may offer a separate account
instead): no session and no link on the squatted account, ever. Ada's own account (made
separately) is reachable only by her Amazon identity; Mallory's reaches only the squatted
account. There is no email recovery yet, so Ada cannot take the squatted account over; when
recovery exists (issue 13) it must end the account's sessions and drop or re-confirm every
Amazon link the recovering person did not prove (docs/security.md).
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

    refused = await amazon_sign_in(ada_tv, ADA)
    assert refused.status_code in (200, 409), refused.text
    assert "session" not in refused.json()
    if refused.status_code == 409:
        assert refused.json()["code"] == "email_account_linked_to_other_amazon"
    else:  # a later release may offer a separate account: never a link to this one
        assert refused.json()["result"] == "registration_required"
    # Ada's identity is linked nowhere; Mallory's link and sessions are as they were.
    assert await service.count("amazon_identities WHERE amazon_user_id = :u", u=ADA) == 0
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
