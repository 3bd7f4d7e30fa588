"""The "This wasn't me" link of every notice (``flows/notices.py``): lock the account down.

The link carries a token signed for its own purpose (``signing.py``, purpose ``not-me``)
naming the account, the notice and when it was sent; it is good for ``MAX_AGE`` (7 days).
It needs no sign-in (the person may be locked out) and is not single-use: what it does is
idempotent, and it can only ever act on the account it names. Its holder can do nothing
but sign the account out everywhere and drop its Amazon link, which grants nobody
anything.

Opening the link (``peek``) only reads: mail scanners fetch links. Confirming (``report``)
under the account's row lock ends every session (browser and device alike), unlinks the
Amazon identity (an intruder's likeliest way back in, and one a password reset would not
close), voids every live one-time e-mail proof (a pending address change, a reset link
sent before) and records ``notice.not_me``. A refused token raises ``EmailLinkInvalid`` or
``EmailLinkExpired`` and leaves a kept ``notice.not_me_refused`` event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, get_args

from lwa_accounts import signing
from lwa_accounts.core.email_codes import EmailCodePurpose
from lwa_accounts.core.models import Account, AmazonProfile
from lwa_accounts.errors import EmailLinkExpired, EmailLinkInvalid, EmailLinkRefused
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.settings import Settings

PURPOSE: Final = "not-me"
MAX_AGE: Final = timedelta(days=7)
# Read with any age, so an old token is told "expired" rather than "not valid".
_ANY_AGE: Final = 10 * 365 * 24 * 3600
_ID_MAX: Final = 128
_EVERY_PROOF: Final[tuple[EmailCodePurpose, ...]] = get_args(EmailCodePurpose)

INVALID_DETAIL: Final = (
    "This link is not valid: it may have been cut short or altered. If you think someone "
    "else is using your account, reset your password."
)
EXPIRED_DETAIL: Final = (
    "This link has expired (they work for 7 days). If you think someone else is using "
    "your account, reset your password: that also signs out every device."
)


@dataclass(frozen=True, slots=True)
class Claim:
    """What a valid token says: the account, the notice and when it was sent."""

    account_id: str
    notice: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class Pending:
    """An opened link, before anything happened: shown on the confirmation page."""

    claim: Claim
    username: str


@dataclass(frozen=True, slots=True)
class LockedDown:
    """What ``report`` did. ``has_password``: whether the account can sign in again
    without a reset (otherwise only a reset, to its address, lets the person in)."""

    account_id: str
    ended_sessions: int
    unlinked_amazon: bool
    voided_codes: int
    has_password: bool


def token(settings: Settings, *, account_id: str, notice: str, now: datetime) -> str:
    """A "This wasn't me" token for ``account_id``, sent with ``notice`` at ``now``."""
    data = {"a": account_id, "n": notice, "t": int(now.timestamp())}
    return signing.dumps(settings, PURPOSE, data, now=now)


def read(settings: Settings, value: object, *, now: datetime) -> Claim:
    """The token's claim, or ``EmailLinkInvalid`` (not ours, altered, cut short, odd data,
    from the future) / ``EmailLinkExpired`` (older than ``MAX_AGE``)."""
    data = signing.loads(settings, PURPOSE, value, now=now, max_age=_ANY_AGE)
    account_id = data.get("a") if data else None
    notice = data.get("n") if data else None
    sent = data.get("t") if data else None
    if (
        not isinstance(account_id, str)
        or not 0 < len(account_id) <= _ID_MAX
        or not isinstance(notice, str)
        or not isinstance(sent, int)
        or isinstance(sent, bool)
    ):
        raise EmailLinkInvalid(INVALID_DETAIL)
    sent_at = datetime.fromtimestamp(sent, UTC)
    if sent_at > now:
        raise EmailLinkInvalid(INVALID_DETAIL)
    if now - sent_at > MAX_AGE:
        raise EmailLinkExpired(EXPIRED_DETAIL)
    return Claim(account_id=account_id, notice=notice, sent_at=sent_at)


async def peek(ctx: Context, value: object) -> Pending:
    """GET /not-me: the claim and the account's username; reads only (no audit, no
    write: a mail scanner's fetch changes nothing)."""
    claim = read(ctx.settings, value, now=ctx.now())

    async def look(tx: Tx) -> Account | None:
        return await tx.accounts.get(claim.account_id)

    account = await ctx.run_read(look)
    if account is None:
        raise EmailLinkInvalid(INVALID_DETAIL)
    return Pending(claim=claim, username=account.username)


async def report(tx: Tx, value: object) -> LockedDown:
    """POST /not-me: end every session of the token's account, unlink its Amazon
    identity, void its live e-mail proofs and audit it, under the account's row lock (a
    second, parallel report finds nothing left to do)."""
    now = tx.now()
    try:
        claim = read(tx.settings, value, now=now)
        account = await tx.accounts.lock(claim.account_id)
        if account is None:
            raise EmailLinkInvalid(INVALID_DETAIL)
    except EmailLinkRefused as refused:
        tx.audit(Event.NOT_ME_REFUSED, detail=f"reason={refused.code}")
        raise
    ended = await tx.sessions.revoke_all(account.id)
    link = await tx.identities.get_for_account(account.id)
    if link is not None:
        await tx.identities.unlink(account.id)
    voided = await tx.email_codes.void(account.id, _EVERY_PROOF, now=now)
    tx.audit(
        Event.NOT_ME,
        account_id=account.id,
        profile=AmazonProfile(user_id=link.amazon_user_id, client_id=link.client_id)
        if link is not None
        else None,
        detail=(
            f"notice={claim.notice} notice_at={claim.sent_at.isoformat()} "
            f"ended_sessions={ended} unlinked_amazon={'yes' if link else 'no'} "
            f"voided_codes={voided}"
        ),
    )
    return LockedDown(
        account_id=account.id,
        ended_sessions=ended,
        unlinked_amazon=link is not None,
        voided_codes=voided,
        has_password=account.has_password,
    )
