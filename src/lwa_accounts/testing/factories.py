"""Factories over the store Protocols: a distinct account, link or Amazon profile per call."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from lwa_accounts.core.models import Account, AmazonLink, AmazonProfile, NewAccount
from lwa_accounts.interfaces import AccountStore, IdentityStore

_counter = itertools.count(1)
WEB_CLIENT_ID = "amzn1.application-oa2-client.web"


def unique(prefix: str = "user") -> str:
    """``prefix`` and a number no other call in this process got (usernames, emails)."""
    return f"{prefix}{next(_counter)}"


async def make_account(
    accounts: AccountStore,
    *,
    username: str | None = None,
    email: str | None = "",
    name: str = "Test Person",
    password_hash: str | None = None,
    email_verified: bool = False,
) -> Account:
    """An account; ``email=""`` (the default) makes a unique address, None makes none."""
    username = username or unique("user")
    if email == "":
        email = f"{username}@example.com"
    return await accounts.create(
        NewAccount(
            username=username,
            email=email,
            name=name,
            password_hash=password_hash,
            email_verified=email_verified,
        )
    )


def amazon_profile(
    *,
    user_id: str | None = None,
    client_id: str = WEB_CLIENT_ID,
    name: str | None = "Test Person",
    email: str | None = None,
    postal_code: str | None = None,
) -> AmazonProfile:
    """A verified Amazon identity with a unique ``amzn1.account.`` user id."""
    return AmazonProfile(
        user_id=user_id or f"amzn1.account.{unique('TEST').upper():0>28}",
        client_id=client_id,
        name=name,
        email=email,
        postal_code=postal_code,
    )


async def make_link(
    identities: IdentityStore,
    account: Account,
    profile: AmazonProfile | None = None,
    *,
    at: datetime | None = None,
) -> AmazonLink:
    """Link ``account`` to ``profile`` (a new unique one by default)."""
    profile = profile or amazon_profile()
    return await identities.link(
        AmazonLink(
            amazon_user_id=profile.user_id,
            account_id=account.id,
            client_id=profile.client_id,
            name=profile.name,
            email=profile.email,
            postal_code=profile.postal_code,
            linked_at=at or datetime.now(UTC),
            last_sign_in_at=None,
        )
    )
