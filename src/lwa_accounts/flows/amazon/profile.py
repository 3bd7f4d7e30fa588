"""Amazon profile data on our side: checked prefill, derived usernames, profile sync.

Amazon's name and email are untrusted input like any form field: they pass the same
validation as a registration before we copy them anywhere. Profile sync follows
security.md item 14 as decided by ``core.profile_sync.plan_sync``: name and postal code
per field policy (``never | fill_empty | always``, settings ``PROFILE_SYNC_NAME`` and
``PROFILE_SYNC_POSTAL_CODE``); a changed Amazon email is applied only when no other
account holds it and only to an account without a password; otherwise it is kept as
``pending_email`` on the link. The link keeps what Amazon last sent (name, email, postal
code: ``/account`` shows it and offers to copy a field over); the account keeps its own
values, which only the policy changes.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import replace
from datetime import datetime

from lwa_accounts.core.decide import Prefill
from lwa_accounts.core.models import Account, AmazonLink, AmazonProfile
from lwa_accounts.core.profile_sync import LocalProfile, plan_sync
from lwa_accounts.core.validation import (
    USERNAME_MAX,
    USERNAME_MIN,
    Valid,
    normalise_email,
    normalise_username,
    validate_name,
)
from lwa_accounts.errors import EmailTaken
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx

POSTAL_CODE_MAX = 32
USERNAME_TRIES = 20

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


async def available_username(tx: Tx, base: str) -> str:
    """``base``, or ``base`` with the smallest free numeric suffix (ada, ada2, ada3...)."""
    for n in range(1, USERNAME_TRIES + 1):
        candidate = base if n == 1 else f"{base}{n}"
        checked = normalise_username(candidate)
        if isinstance(checked, Valid) and await tx.accounts.get_by_username(candidate) is None:
            return checked.value
    # A crowded base: fall back to a random suffix rather than scanning further.
    return f"{base[: USERNAME_MAX - 7]}-{secrets.token_hex(3)}"


def link_seen(
    link: AmazonLink, profile: AmazonProfile, prefill: Prefill, now: datetime
) -> AmazonLink:
    """The link with the profile as just seen at Amazon: what Amazon last sent (a value
    Amazon stopped sharing is remembered as last seen; its email, which decides item 14's
    rules, is always the current one)."""
    return replace(
        link,
        client_id=profile.client_id,
        name=prefill.name or link.name,
        email=prefill.email,
        postal_code=prefill.postal_code or link.postal_code,
        last_sign_in_at=now,
    )


async def sync_profile(
    tx: Tx, account: Account, link: AmazonLink, profile: AmazonProfile
) -> tuple[Account, AmazonLink]:
    """Refresh the account and link from a verified profile under the sync policy
    (security.md item 14): every sign-in, attach and password-proven link of an existing
    account."""
    prefill = checked_prefill(profile)
    local = LocalProfile(
        name=account.name,
        postal_code=account.postal_code,
        email=account.email,
        has_password=account.has_password,
        last_amazon_email=link.email,
    )
    plan = plan_sync(local, prefill, tx.deps.sync_policy)
    if plan.name is not None or plan.postal_code is not None:
        account = await tx.accounts.update(account.id, name=plan.name, postal_code=plan.postal_code)
    seen = link_seen(link, profile, prefill, tx.now())
    amazon_email = prefill.email
    if plan.email == "clear_pending":
        seen = replace(seen, pending_email=None)
    elif plan.email == "take_if_free" and (moved := await _take_email(tx, account, amazon_email)):
        account = moved
        seen = replace(seen, pending_email=None)
        _audit(tx, Event.AMAZON_EMAIL_UPDATED, account, link)
    elif plan.email != "keep":
        # A password account's recovery address, or one another account holds.
        seen = replace(seen, pending_email=amazon_email)
        _audit(tx, Event.AMAZON_EMAIL_PENDING, account, link)
    await tx.identities.update_seen(seen)
    return account, seen


async def _take_email(tx: Tx, account: Account, email: str | None) -> Account | None:
    """The account moved to ``email`` if no other account holds it (unverified: Amazon's
    email is a hint, not proof); None when it stays."""
    if not email:
        return None
    holder = await tx.accounts.get_by_email(email)
    if holder is not None and holder.id != account.id:
        return None
    try:
        return await tx.accounts.update(account.id, email=email, email_verified=False)
    except EmailTaken:  # taken between the look-up and the update
        return None


def _audit(tx: Tx, kind: Event, account: Account, link: AmazonLink) -> None:
    tx.audit(kind, account_id=account.id, profile=_profile_of(link))


def _profile_of(link: AmazonLink) -> AmazonProfile:
    return AmazonProfile(user_id=link.amazon_user_id, client_id=link.client_id)
