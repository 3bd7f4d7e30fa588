"""Issuing and redeeming one-time e-mail proofs (``core/email_codes.py``).

``issue`` makes a proof for an account and address and returns its link token and short
code, to be put in a message (``mail/render.py``) queued in the same transaction; an
earlier unused proof of the same purpose for the account is spent, so one message is live
at a time. Issuing counts against the e-mail budget (``Throttle.count_email``) before
anything is written: a flow cannot be made to send mail without limit.

The link token is signed (``signing.py``, a purpose per proof purpose, the proof's
lifetime as ``max_age``) and carries the proof's id and a 256-bit secret kept only as a
SHA-256 digest, so an altered token is told from an expired one without the database, and
a database copy cannot forge one. The code is six digits kept as an HMAC under the secret
key (a copied table cannot be brute-forced offline), with a few wrong guesses allowed per
message (``MAX_WRONG_CODES``): each guess is reserved from the code's throttle budget
before it is compared (parallel guesses cannot get more), and recorded on the row through
a rollback (``tx.keep``), which keeps a dead code dead.

Redemption raises the refusal for its reason (``errors.EmailLinkRefused`` subclasses:
invalid, expired, used, for another account, too many wrong codes) and spends the proof
by compare-and-set, so a link raced from two tabs works once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lwa_accounts import signing
from lwa_accounts.compare import same_secret
from lwa_accounts.core.email_codes import (
    LIFETIMES,
    EmailCode,
    EmailCodePurpose,
    Refusal,
    new_code,
    normalise_code,
    refusal,
    wrong_codes_left,
)
from lwa_accounts.core.models import Account
from lwa_accounts.errors import (
    EmailCodeExhausted,
    EmailLinkExpired,
    EmailLinkForAnotherAccount,
    EmailLinkInvalid,
    EmailLinkRefused,
    EmailLinkUsed,
    TooManyAttempts,
    WrongEmailCode,
)
from lwa_accounts.flows.context import Tx
from lwa_accounts.settings import Settings

ID_PREFIX = "ec_"
# A signature older than any lifetime still tells "expired" from "altered".
_ANY_AGE = 10 * 365 * 24 * 3600

_REFUSED: dict[Refusal, type[EmailLinkRefused]] = {
    "invalid": EmailLinkInvalid,
    "expired": EmailLinkExpired,
    "used": EmailLinkUsed,
    "other_account": EmailLinkForAnotherAccount,
    "exhausted": EmailCodeExhausted,
}


@dataclass(frozen=True)
class IssuedCode:
    """What goes into the message: the link's token and the code (never stored plain)."""

    code_id: str
    email: str
    expires_at: datetime
    link_token: str = field(repr=False)
    code: str = field(repr=False)


def _link_purpose(purpose: EmailCodePurpose) -> str:
    return f"email-link {purpose}"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _code_digest(key: bytes, code_id: str, code: str) -> str:
    return hmac.new(key, f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _code_matches(settings: Settings, stored: EmailCode, code: str) -> bool:
    # Every key verifies (rotation), the first one made it.
    return any(
        same_secret(stored.code_digest, _code_digest(key, stored.id, code))
        for key in settings.signing_keys
    )


async def issue(
    tx: Tx,
    *,
    purpose: EmailCodePurpose,
    account: Account,
    email: str,
    bound_to: str | None = None,
    first: bool = False,
) -> IssuedCode:
    """A new proof of ``purpose`` for ``account`` at ``email`` (earlier unused ones of the
    purpose are spent; ``first``: the account was made in this transaction, it has none).
    Raises ``TooManyAttempts`` when the e-mail budget is spent."""
    await tx.deps.throttle.count_email(account.id, tx.client.ip)
    now = tx.now()
    if not first:
        await tx.email_codes.void(account.id, [purpose], now=now)
    code_id = ID_PREFIX + secrets.token_urlsafe(16)
    secret = secrets.token_urlsafe(32)
    code = new_code()
    expires_at = now + LIFETIMES[purpose]
    await tx.email_codes.create(
        EmailCode(
            id=code_id,
            purpose=purpose,
            account_id=account.id,
            email=email,
            link_digest=_sha256(secret),
            code_digest=_code_digest(tx.settings.signing_keys[0], code_id, code),
            bound_to=bound_to,
            created_at=now,
            expires_at=expires_at,
            used_at=None,
            attempts=0,
        )
    )
    token = signing.dumps(tx.settings, _link_purpose(purpose), {"i": code_id, "s": secret}, now=now)
    return IssuedCode(
        code_id=code_id, email=email, expires_at=expires_at, link_token=token, code=code
    )


def _refuse(reason: Refusal, **extra: Any) -> EmailLinkRefused:
    return _REFUSED[reason](**extra)


async def peek_link(tx: Tx, purpose: EmailCodePurpose, token: object) -> EmailCode:
    """The proof a link names if it may be used now, without spending it (a page that
    asks for a confirmation first, or a new password); raises the refusal otherwise."""
    return await _check_link(tx, purpose, token, account_id=None)


async def redeem_link(
    tx: Tx, purpose: EmailCodePurpose, token: object, *, account_id: str | None = None
) -> EmailCode:
    """Spend the proof the link names and return it, or raise why it cannot be used
    (``account_id``: who is signed in, when it matters; a link for another account is
    refused)."""
    code = await _check_link(tx, purpose, token, account_id=account_id)
    if not await tx.email_codes.mark_used(code.id, now=tx.now()):
        raise _refuse("used")
    return code


async def _check_link(
    tx: Tx, purpose: EmailCodePurpose, token: object, *, account_id: str | None
) -> EmailCode:
    now = tx.now()
    max_age = int(LIFETIMES[purpose].total_seconds())
    data = signing.loads(tx.settings, _link_purpose(purpose), token, now=now, max_age=max_age)
    if data is None:
        old = signing.loads(tx.settings, _link_purpose(purpose), token, now=now, max_age=_ANY_AGE)
        raise _refuse("expired" if old is not None else "invalid")
    code_id, secret = data.get("i"), data.get("s")
    if not isinstance(code_id, str) or not isinstance(secret, str):
        raise _refuse("invalid")
    code = await tx.email_codes.get_for_update(code_id)
    if (
        code is None
        or code.purpose != purpose
        or not same_secret(code.link_digest, _sha256(secret))
    ):
        raise _refuse("invalid")
    reason = refusal(code, now=now, account_id=account_id)
    if reason is not None:
        raise _refuse(reason)
    return code


async def redeem_code(
    tx: Tx,
    purpose: EmailCodePurpose,
    *,
    account_id: str,
    typed: str,
    bound_to: str | None = None,
) -> EmailCode:
    """Spend the account's live proof of ``purpose`` if ``typed`` is its code. A wrong
    code is counted (through a rollback too) and raises ``WrongEmailCode`` with
    ``attempts_left``; the last wrong one, ``EmailCodeExhausted``; no live proof,
    ``EmailLinkExpired``."""
    code = await tx.email_codes.live(account_id, purpose, now=tx.now(), bound_to=bound_to)
    if code is None:
        raise EmailLinkExpired(
            "No code is waiting for this: it expired or was used. Ask for a new one."
        )
    # The guess is reserved before the comparison: the row's count alone would let
    # parallel guesses all read it before any rollback re-writes it.
    try:
        guess = await tx.deps.throttle.reserve_email_code(code.id)
    except TooManyAttempts:
        raise _refuse("exhausted") from None
    digits = normalise_code(typed)
    if digits is None or not _code_matches(tx.settings, code, digits):
        left = guess.failed()
        await tx.keep(lambda stores: stores.email_codes.count_wrong(code.id))
        if left == 0:
            raise _refuse("exhausted")
        raise WrongEmailCode(attempts_left=min(left, wrong_codes_left(code)))
    await guess.succeeded()
    if not await tx.email_codes.mark_used(code.id, now=tx.now()):
        raise _refuse("used")
    return code
