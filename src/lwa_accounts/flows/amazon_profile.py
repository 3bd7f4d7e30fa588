"""Amazon profile data on our side: checked prefill, derived usernames, profile sync.

Amazon's name and email are untrusted input like any form field: they pass the same
validation as a registration before we copy them anywhere. Profile sync follows
security.md item 14: name and postal code refresh on every Amazon sign-in; a changed
Amazon email is applied only when no other account holds it and only to an account
without a password; otherwise it is kept as ``pending_email`` on the link.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import replace
from datetime import datetime

from lwa_accounts.core.decide import Prefill
from lwa_accounts.core.models import Account, AmazonLink, AmazonProfile, AuditEvent
from lwa_accounts.core.validation import (
    USERNAME_MAX,
    USERNAME_MIN,
    Valid,
    email_key,
    normalise_email,
    normalise_username,
    validate_name,
)
from lwa_accounts.errors import EmailTaken
from lwa_accounts.store.db import Stores

POSTAL_CODE_MAX = 32
USERNAME_TRIES = 20
EMAIL_PENDING = "amazon.email_pending"
EMAIL_UPDATED = "amazon.email_updated"

_NOT_USERNAME = re.compile(r"[^a-z0-9._-]+")


def checked_prefill(profile: AmazonProfile) -> Prefill:
    """The profile values that would pass a registration form (others count as missing)."""
    name = validate_name(profile.name) if profile.name else None
    email = normalise_email(profile.email) if profile.email else None
    postal = (profile.postal_code or "").strip()
    return Prefill(
        name=name.value if isinstance(name, Valid) else None,
        email=email.value if isinstance(email, Valid) else None,
        postal_code=postal[:POSTAL_CODE_MAX] if postal.isprintable() and postal else None,
    )


def username_base(email: str | None, name: str | None) -> str:
    """A username-shaped base from the email's local part, else the name, else "user"."""
    for source in (email.rpartition("@")[0] if email else None, name):
        if not source:
            continue
        # Fold accents away (José -> jose), then keep only the username alphabet.
        ascii_text = unicodedata.normalize("NFKD", source).encode("ascii", "ignore").decode()
        base = _NOT_USERNAME.sub(".", ascii_text.lower()).strip("._-")
        base = re.sub(r"([._-])[._-]+", r"\1", base)[: USERNAME_MAX - 4].strip("._-")
        if len(base) >= USERNAME_MIN:
            return base
    return "user"


async def available_username(stores: Stores, base: str) -> str:
    """``base``, or ``base`` with the smallest free numeric suffix (ada, ada2, ada3...)."""
    for n in range(1, USERNAME_TRIES + 1):
        candidate = base if n == 1 else f"{base}{n}"
        checked = normalise_username(candidate)
        if isinstance(checked, Valid) and await stores.accounts.get_by_username(candidate) is None:
            return checked.value
    # A crowded base: fall back to a random suffix rather than scanning further.
    return f"{base[: USERNAME_MAX - 7]}-{secrets.token_hex(3)}"


def link_seen(
    link: AmazonLink, profile: AmazonProfile, prefill: Prefill, now: datetime
) -> AmazonLink:
    """The link with the profile as just seen at Amazon."""
    return replace(
        link,
        client_id=profile.client_id,
        name=prefill.name or link.name,
        email=prefill.email,
        postal_code=prefill.postal_code,
        last_sign_in_at=now,
    )


async def sync_profile(
    stores: Stores,
    account: Account,
    link: AmazonLink,
    profile: AmazonProfile,
    *,
    now: datetime,
    ip: str | None,
) -> tuple[Account, AmazonLink]:
    """Refresh the account and link from a verified profile (security.md item 14)."""
    prefill = checked_prefill(profile)
    if prefill.name and prefill.name != account.name:
        account = await stores.accounts.update(account.id, name=prefill.name)
    seen = link_seen(link, profile, prefill, now)
    amazon_email = prefill.email
    changed_at_amazon = amazon_email is not None and (
        link.email is None or email_key(link.email) != email_key(amazon_email)
    )
    if amazon_email is not None and changed_at_amazon:
        if account.email is not None and email_key(account.email) == email_key(amazon_email):
            seen = replace(seen, pending_email=None)
        elif not account.has_password and await _take_email(stores, account, amazon_email):
            account = await stores.accounts.get(account.id) or account
            seen = replace(seen, pending_email=None)
            await _audit(stores, EMAIL_UPDATED, account, link, now, ip)
        else:
            # Never silently move the password-recovery address, nor onto someone else's.
            seen = replace(seen, pending_email=amazon_email)
            await _audit(stores, EMAIL_PENDING, account, link, now, ip)
    await stores.identities.update_seen(seen)
    return account, seen


async def _take_email(stores: Stores, account: Account, email: str) -> bool:
    """Move the account to ``email`` if no other account holds it (unverified: Amazon's
    email is a hint, not proof)."""
    holder = await stores.accounts.get_by_email(email)
    if holder is not None and holder.id != account.id:
        return False
    try:
        await stores.accounts.update(account.id, email=email, email_verified=False)
    except EmailTaken:  # taken between the look-up and the update
        return False
    return True


async def _audit(
    stores: Stores, kind: str, account: Account, link: AmazonLink, now: datetime, ip: str | None
) -> None:
    await stores.audit.record(
        AuditEvent(
            kind=kind,
            at=now,
            account_id=account.id,
            amazon_user_id=link.amazon_user_id,
            client_id=link.client_id,
            ip=ip,
        )
    )
