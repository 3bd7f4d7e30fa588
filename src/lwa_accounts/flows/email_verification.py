"""E-mail verification: on registration, on request, and for a changed address.

A ``verify_email`` proof (``flows/email_codes.py``: a signed single-use link and a
six-digit code, 24 hours) is sent to an address the account uses or asked for; the
address it was sent to is the proof's ``email`` column. Redeeming it (the link on
``/verify-email``, or the code on ``/account`` and ``POST /api/v1/me/email-verification``)
is a verified claim of that address (``flows/email_claims.py``): the address becomes the
account's, verified. So a changed address is pending until the new one is confirmed (the
old one stays the account's meanwhile and is told of the request), and one live proof per
account means a newer request replaces an older one.

A link opened while another account is signed in is refused (``other_account``); opened
signed out it works, because the link itself is the proof of reading the mail. Its page
says which account and address it confirms, so a person does not confirm an address for
someone else's account by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from lwa_accounts.core.email_codes import LIFETIMES, EmailCode, EmailCodePurpose
from lwa_accounts.core.models import Account
from lwa_accounts.core.validation import Invalid, email_key, normalise_email
from lwa_accounts.errors import (
    EmailAlreadyVerified,
    EmailLinkForAnotherAccount,
    EmailTaken,
    NotFound,
    TooManyAttempts,
    ValidationFailed,
)
from lwa_accounts.flows import email_codes
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.email_claims import claim_verified_email, holds
from lwa_accounts.flows.notices import notify
from lwa_accounts.mail.render import render_mail

VERIFY_PATH = "/verify-email"
PURPOSE: EmailCodePurpose = "verify_email"
_HOURS = int(LIFETIMES[PURPOSE].total_seconds() // 3600)


@dataclass(frozen=True)
class Sent:
    """A verification mail queued for ``email``."""

    email: str
    expires_at: datetime


@dataclass(frozen=True)
class Verified:
    """A redeemed proof: the account as it is now, and whether its address changed."""

    account: Account
    changed: bool


@dataclass(frozen=True)
class LinkPreview:
    """What a link would confirm, for the page that asks before spending it."""

    proof: EmailCode
    account: Account
    held_elsewhere: bool  # another account holds the address unverified and would lose it


def verify_url(tx: Tx, token: str) -> str:
    return f"{tx.settings.public_url.rstrip('/')}{VERIFY_PATH}?token={quote(token, safe='')}"


async def send_verification(
    tx: Tx,
    account: Account,
    email: str,
    *,
    reason: str,
    held_elsewhere: bool = False,
    first: bool = False,
) -> Sent:
    """Issue a proof for ``email`` (spending the account's earlier one) and queue its mail
    in this transaction; TooManyAttempts when the e-mail budget is spent.
    ``held_elsewhere``: another account uses the address unverified (the mail says that
    confirming moves it, so its owner does not confirm for a stranger's account)."""
    issued = await email_codes.issue(tx, purpose=PURPOSE, account=account, email=email, first=first)
    await tx.send_mail(
        render_mail(
            "verify_email",
            to=email,
            settings=tx.settings,
            account_id=account.id,
            link=verify_url(tx, issued.link_token),
            code=issued.code,
            username=account.username,
            change=not holds(account, email),
            held_elsewhere=held_elsewhere,
            hours=_HOURS,
        )
    )
    tx.audit(Event.EMAIL_VERIFICATION_SENT, account_id=account.id, detail=f"reason={reason}")
    return Sent(email=email, expires_at=issued.expires_at)


async def send_on_creation(
    tx: Tx, account: Account, email: str, *, reason: str, claim: bool = False
) -> None:
    """A new account's verification mail (``claim``: for an address another account holds
    unverified). A spent e-mail budget does not refuse the account: none is sent
    (audited), and the person can ask for one from /account."""
    try:
        await send_verification(tx, account, email, reason=reason, held_elsewhere=claim, first=True)
    except TooManyAttempts:
        deferred = Event.EMAIL_VERIFICATION_DEFERRED
        tx.audit(deferred, account_id=account.id, detail=f"reason={reason}")


async def pending_change(tx: Tx, account: Account) -> EmailCode | None:
    """The live proof for an address the account asked for but does not hold yet (not
    one another account has confirmed since: that one can only be refused as taken, e.g.
    the registration mail of an account that lost its address to a verified claim)."""
    proof = await tx.email_codes.live(account.id, PURPOSE, now=tx.now())
    if proof is None or holds(account, proof.email):
        return None
    holder = await tx.accounts.get_by_email(proof.email)
    if holder is not None and holder.id != account.id and holder.email_verified:
        return None
    return proof


async def cancel_change(tx: Tx, account: Account) -> bool:
    """Forget a pending change (its link and code stop working); False if none waited."""
    if await pending_change(tx, account) is None:
        return False
    await tx.email_codes.void(account.id, [PURPOSE], now=tx.now())
    return True


async def resend(tx: Tx, account: Account) -> Sent:
    """A new proof for the address waiting to be confirmed: a pending change, else the
    account's own unverified address."""
    waiting = await tx.email_codes.live(account.id, PURPOSE, now=tx.now())
    if waiting is not None and not holds(account, waiting.email):
        return await send_verification(tx, account, waiting.email, reason="resend")
    if account.email is None:
        raise ValidationFailed(errors={"email": "Add an e-mail address first."})
    if account.email_verified:
        raise EmailAlreadyVerified()
    return await send_verification(tx, account, account.email, reason="resend")


def checked_email(raw: str) -> str:
    """A new address as typed, or ValidationFailed naming ``email``."""
    checked = normalise_email(raw)
    if isinstance(checked, Invalid):
        raise ValidationFailed(errors={"email": checked.message})
    return checked.value


async def request_change(tx: Tx, account: Account, email: str) -> Sent | None:
    """Ask to use ``email`` (checked): the verification mail goes to it and a notice to
    the old address, which the account keeps until the new one is confirmed. The caller
    has confirmed it is the account's owner (a recent sign-in or the password).

    The account's own address cancels a pending change instead (None; an unverified one
    gets a fresh proof). EmailTaken when another account holds the address verified."""
    if holds(account, email):
        await tx.email_codes.void(account.id, [PURPOSE], now=tx.now())
        if account.email_verified:
            return None
        return await send_verification(tx, account, email, reason="resend")
    holder = await tx.accounts.get_by_email(email)
    held = holder is not None and holder.id != account.id
    if held and holder is not None and holder.email_verified:
        raise EmailTaken("Another account uses that address.")
    sent = await send_verification(tx, account, email, reason="change", held_elsewhere=held)
    if account.email is not None:
        # The old address is told, with the notice's "This wasn't me" link (it ends the
        # sessions and voids this proof: the change is cancelled).
        await notify(tx, account, "email_changed", to=account.email, new_email=email)
    tx.audit(Event.EMAIL_CHANGE_REQUESTED, account_id=account.id)
    return sent


async def preview_link(tx: Tx, token: object, *, signed_in: Account | None) -> LinkPreview:
    """What the link confirms, without spending it (a GET: mail scanners prefetch links);
    raises the refusal (``errors.EmailLinkRefused``) otherwise."""
    proof = await email_codes.peek_link(tx, PURPOSE, token)
    if signed_in is not None and signed_in.id != proof.account_id:
        raise EmailLinkForAnotherAccount()
    account = await tx.accounts.get(proof.account_id)
    if account is None:  # pragma: no cover - proofs are deleted with their account
        raise NotFound("No such account.")
    holder = await tx.accounts.get_by_email(proof.email)
    return LinkPreview(
        proof=proof,
        account=account,
        held_elsewhere=holder is not None and holder.id != account.id,
    )


async def verify_link(tx: Tx, token: object, *, signed_in: Account | None) -> Verified:
    """Spend the link and claim its address for its account."""
    proof = await email_codes.redeem_link(
        tx, PURPOSE, token, account_id=signed_in.id if signed_in else None
    )
    return await _claim(tx, proof)


async def verify_code(tx: Tx, account: Account, typed: str) -> Verified:
    """Spend the account's live proof if ``typed`` is its code, and claim its address."""
    proof = await email_codes.redeem_code(tx, PURPOSE, account_id=account.id, typed=typed)
    return await _claim(tx, proof)


async def _claim(tx: Tx, proof: EmailCode) -> Verified:
    before = await tx.accounts.get(proof.account_id)
    if before is None:  # pragma: no cover - proofs are deleted with their account
        raise NotFound("No such account.")
    account = await claim_verified_email(tx, proof.account_id, proof.email)
    changed = before.email is None or email_key(before.email) != email_key(proof.email)
    tx.audit(Event.EMAIL_VERIFIED, account_id=account.id)
    if changed:
        tx.audit(
            Event.EMAIL_CHANGED,
            account_id=account.id,
            detail="from=none" if before.email is None else "from=previous",
        )
        if before.email is not None:
            await notify(
                tx, before, "email_changed", to=before.email, new_email=proof.email, confirmed=True
            )
    return Verified(account=account, changed=changed)
