"""Who holds an e-mail address: the one rule for a verified claim (security.md item 14c).

An address belongs to at most one account (a unique index). Typing an address proves
nothing (anyone can register any address), so an account may hold one *unverified*; a
verified claim (a person just redeemed a ``verify_email`` proof sent to it) settles who it
belongs to:

- held by nobody, or by the claiming account itself: it is the claimer's, verified;
- held *unverified* by another account: that account loses it (``email.released``, its
  holder keeps every other way in) and the claimer gets it, verified;
- held *verified* by another account: ``EmailTaken``, and the caller's transaction rolls
  back, so nothing is written.

Both accounts are locked in one order (by id), and nothing else is locked after them
(the released account's own proof for the address is left alone: redeeming it later is
simply refused as taken), so two claims racing for one address, or
a claim racing the holder's own verification, end with exactly one owner; a holder that
appears between the look-up and the write (the unique index refuses the write) is looked
at again.
"""

from __future__ import annotations

from lwa_accounts.core.models import Account
from lwa_accounts.core.validation import email_key
from lwa_accounts.errors import EmailTaken, NotFound
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx

CLAIM_TRIES = 3
TAKEN = "Another account has already confirmed this address. Nothing was changed."


def holds(account: Account | None, email: str) -> bool:
    return (
        account is not None
        and account.email is not None
        and email_key(account.email) == email_key(email)
    )


async def claim_verified_email(tx: Tx, account_id: str, email: str) -> Account:
    """Give ``email``, verified, to the account (the rule above); EmailTaken when another
    account holds it verified."""
    for _ in range(CLAIM_TRIES):
        holder = await tx.accounts.get_by_email(email)
        others = {holder.id} - {account_id} if holder is not None else set()
        locked: dict[str, Account | None] = {}
        for key in sorted({account_id} | others):  # one order: no deadlock between claims
            locked[key] = await tx.accounts.lock(key)
        if locked[account_id] is None:
            raise NotFound("No such account.")
        for other_id in others:
            other = locked[other_id]
            if not holds(other, email):
                continue  # it let go meanwhile (read again under the lock)
            assert other is not None
            if other.email_verified:
                raise EmailTaken(TAKEN)
            await tx.accounts.update(other.id, email="", email_verified=False)
            tx.audit(Event.EMAIL_RELEASED, account_id=other.id, detail=f"claimed_by={account_id}")
        try:
            return await tx.accounts.update(account_id, email=email, email_verified=True)
        except EmailTaken:
            continue  # a new holder since the look-up: look again
    raise EmailTaken(TAKEN)
