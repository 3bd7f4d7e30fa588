"""One-time proofs sent by e-mail: a link and a short code, for one purpose.

A person proves they read an address (``verify_email``), may set a new password
(``reset_password``) or owns a local account being linked (``prove_account``) by
following the link in a message or by typing its short code on another device. Each proof
is single-use, expires, and belongs to one account and one address; a code allows a few
wrong guesses, then is dead. The flows issue and redeem them (``flows/email_codes.py``);
what is decided here is only whether a stored proof may still be used.

Standard library only (core/ is pure).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

EmailCodePurpose = Literal["verify_email", "reset_password", "prove_account"]

LIFETIMES: dict[EmailCodePurpose, timedelta] = {
    "verify_email": timedelta(hours=24),
    "reset_password": timedelta(minutes=30),
    "prove_account": timedelta(minutes=10),  # no longer than the link step it proves for
}
CODE_DIGITS = 6
MAX_WRONG_CODES = 5  # then the code is dead: 5 guesses in 10**6 per message sent

# Why a link or code is refused, in the person's terms (each has its own page and error).
Refusal = Literal["invalid", "expired", "used", "other_account", "exhausted"]


@dataclass(frozen=True, slots=True)
class EmailCode:
    """A stored proof (its secrets only as digests)."""

    id: str
    purpose: EmailCodePurpose
    account_id: str
    email: str
    link_digest: str = field(repr=False)
    code_digest: str = field(repr=False)
    bound_to: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    attempts: int


def new_code() -> str:
    """A short code a person can read off one screen and type on another."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normalise_code(typed: str) -> str | None:
    """The digits a person typed (spaces and dashes ignored), or None if it cannot be one."""
    digits = "".join(ch for ch in typed if ch not in " -")
    if len(digits) != CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def refusal(code: EmailCode, *, now: datetime, account_id: str | None = None) -> Refusal | None:
    """Why ``code`` may not be used now (by ``account_id`` when someone is signed in), or
    None. Used beats expired: a person who clicks twice learns it already worked."""
    if code.used_at is not None:
        return "used"
    if code.attempts >= MAX_WRONG_CODES:
        return "exhausted"
    if now >= code.expires_at:
        return "expired"
    if account_id is not None and account_id != code.account_id:
        return "other_account"
    return None


def wrong_codes_left(code: EmailCode) -> int:
    """Guesses left after one more wrong code."""
    return max(0, MAX_WRONG_CODES - code.attempts - 1)
