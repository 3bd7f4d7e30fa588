"""Profile sync: which local fields a verified Amazon profile updates (security.md item 14).

A pure decision from the local values, Amazon's (checked) values and a per-field policy;
the flows look up the values and write what :func:`plan_sync` says.

Name and postal code each follow a :data:`FieldPolicy`:

- ``never``: Amazon's value is never copied over a local one;
- ``fill_empty``: only an empty local value is filled (what a person typed stays);
- ``always``: the local value follows Amazon's.

Under every policy an empty Amazon value (not shared, or refused by validation) leaves the
local value as it is: Amazon never blanks a field. Defaults: name ``fill_empty``, postal
code ``always``. A new account is not synced but made from Amazon's values (nothing was
typed yet).

The email is not configurable; it has the fixed rules of item 14 (:func:`email_action`):
only a change *at Amazon* counts; it moves the local address only of an account without a
password (never silently the password-recovery address), and only when no other account
holds it (the flow checks that and keeps it pending otherwise); everything else is recorded
as pending on the link.

Standard library only (core/ is pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from lwa_accounts.core.decide import Prefill
from lwa_accounts.core.validation import email_key

FieldPolicy = Literal["never", "fill_empty", "always"]
FIELD_POLICIES: tuple[FieldPolicy, ...] = get_args(FieldPolicy)

# What happens to the local email: nothing; clear a pending one (the account already holds
# Amazon's address); take Amazon's address if no other account holds it, else pending;
# record it as pending.
EmailAction = Literal["keep", "clear_pending", "take_if_free", "pending"]


@dataclass(frozen=True, slots=True)
class SyncPolicy:
    """The policy per synced field (settings ``PROFILE_SYNC_NAME`` / ``_POSTAL_CODE``)."""

    name: FieldPolicy = "fill_empty"
    postal_code: FieldPolicy = "always"


@dataclass(frozen=True, slots=True)
class LocalProfile:
    """The local side of a sync: the account's values and the Amazon email seen last."""

    name: str | None
    postal_code: str | None
    email: str | None
    has_password: bool
    last_amazon_email: str | None  # the Amazon email as seen at the previous sign-in


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What to write. ``name`` / ``postal_code``: the new value, None to leave it alone."""

    name: str | None
    postal_code: str | None
    email: EmailAction


def is_empty(value: str | None) -> bool:
    return value is None or not value.strip()


def field_update(policy: FieldPolicy, local: str | None, amazon: str | None) -> str | None:
    """The new value of one field under ``policy``, or None to leave it as it is."""
    if policy == "never" or is_empty(amazon) or amazon == local:
        return None
    if policy == "fill_empty" and not is_empty(local):
        return None
    return amazon


def email_action(local: LocalProfile, amazon_email: str | None) -> EmailAction:
    """Item 14's email rule (see the module docstring)."""
    if is_empty(amazon_email):
        return "keep"
    assert amazon_email is not None
    seen = local.last_amazon_email
    if seen is not None and email_key(seen) == email_key(amazon_email):
        return "keep"  # not changed at Amazon since the last sign-in
    if local.email is not None and email_key(local.email) == email_key(amazon_email):
        return "clear_pending"
    # Never silently move the password-recovery address, nor onto someone else's.
    return "pending" if local.has_password else "take_if_free"


def plan_sync(local: LocalProfile, amazon: Prefill, policy: SyncPolicy) -> SyncPlan:
    """What a sign-in (or attach, or link) with this Amazon profile changes locally."""
    return SyncPlan(
        name=field_update(policy.name, local.name, amazon.name),
        postal_code=field_update(policy.postal_code, local.postal_code, amazon.postal_code),
        email=email_action(local, amazon.email),
    )
