"""Link by a code e-mailed to the local account's verified address: the other proof.

The guide asks for the local credentials before a link; a six-digit code sent to the
account's *verified* address proves ownership as well, without a password the person may
have forgotten (security.md item 6b). The rules:

- Offered only when the account's address is verified (``email_verified``): an
  unverified address may be a squatter's and proves nothing (``CodeProofUnavailable``).
- Sent to the account's own address, never to the Amazon profile's: they match only as a
  hint, and Amazon does not verify its e-mail.
- Bound to this one flow (``bound_to``: a label of the flow's id digest), so a code sent
  for flow A never completes flow B, even for the same account; and only the flow's own
  originator reaches it (the browser's binding, the device's flow id, the phone's Amazon
  proof), as for the password.
- A code and no link in the message: a link opened in a mail app on another device would
  finish the flow for whoever started it, the very phishing the message warns about.
- Each typed code first takes one of the flow's attempts in a transaction of its own
  that commits (a reservation: parallel guesses cannot pass the flow's budget, wrong
  passwords and wrong codes share it), then is redeemed, each guess reserved from the
  code's own budget first (``flows/email_codes.py``). The right code ends in
  ``link.link_proven``, exactly like the right password (``method=code``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from lwa_accounts.core.email_codes import LIFETIMES, EmailCodePurpose
from lwa_accounts.core.masking import mask_email
from lwa_accounts.core.models import Account, PendingFlow
from lwa_accounts.core.validation import email_key
from lwa_accounts.errors import (
    CodeProofUnavailable,
    EmailLinkExpired,
    EmailLinkRefused,
    TooManyAttempts,
    WrongEmailCode,
)
from lwa_accounts.flows.amazon.link import (
    LinkAttempt,
    link_proven,
    link_target,
    relock,
    require_attempts,
)
from lwa_accounts.flows.amazon.outcomes import FlowFinished
from lwa_accounts.flows.amazon.pending import Originator
from lwa_accounts.flows.amazon.refusals import refuse
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.email_codes import issue, redeem_code

PURPOSE: EmailCodePurpose = "prove_account"
MAIL_KIND = "prove_account"
NO_CODE = "No code is waiting for this step: it expired or was used. Ask for a new one."


@dataclass(frozen=True, slots=True)
class CodeSent:
    """Where the code went (masked) and until when it works."""

    sent_to: str
    expires_at: datetime


def code_binding(flow: PendingFlow) -> str:
    """What a code is bound to: this flow (its id's digest; the id itself is secret)."""
    return "link-flow:" + flow.id_hash


def code_offer(account: Account | None) -> str | None:
    """The masked address a code would go to, or None when the account has no verified
    address (then no code is offered)."""
    if account is None or not account.email_verified or not account.email:
        return None
    return mask_email(account.email)


def _verified_email(tx: Tx, flow: PendingFlow, account: Account) -> str:
    if code_offer(account) is None or account.email is None:
        refuse(tx, CodeProofUnavailable(), account_id=account.id, profile=flow.profile)
    return account.email


async def begin_code_link(tx: Tx, flow_id: str, originator: Originator) -> LinkAttempt:
    """The pending link flow, ready for a code: its account has a verified address and
    the flow attempts left (no password throttle: the code is the owner's way past it)."""
    attempt = await link_target(tx, flow_id, originator)
    _verified_email(tx, attempt.flow, attempt.account)
    require_attempts(tx, attempt)
    return attempt


async def send_link_code(tx: Tx, attempt: LinkAttempt) -> CodeSent:
    """A new code for this flow to the account's verified address (an earlier one is
    spent), queued in this transaction; the e-mail budget is taken first (429)."""
    flow, account = attempt.flow, attempt.account
    email = _verified_email(tx, flow, account)
    try:
        issued = await issue(
            tx, purpose=PURPOSE, account=account, email=email, bound_to=code_binding(flow)
        )
    except TooManyAttempts as throttled:
        refuse(tx, throttled, account_id=account.id, profile=flow.profile)
    # Imported here: importing a flow loads no template engine (tests/flows/test_layering.py).
    from lwa_accounts.mail.render import render_mail

    now = tx.now()
    mail = render_mail(
        MAIL_KIND,
        to=email,
        settings=tx.settings,
        account_id=account.id,
        code=issued.code,
        username=account.username,
        minutes=int(LIFETIMES[PURPOSE].total_seconds() // 60),
        asked_ip=tx.client.ip or "unknown",
        asked_at=now.strftime("%Y-%m-%d %H:%M"),
    )
    await tx.send_mail(mail)
    tx.audit(Event.AMAZON_LINK_CODE_SENT, account_id=account.id, profile=flow.profile)
    return CodeSent(sent_to=mask_email(email), expires_at=min(issued.expires_at, flow.expires_at))


async def reserve_code_attempt(tx: Tx, attempt: LinkAttempt) -> None:
    """One of the flow's attempts, taken for a typed code before it is compared (commit
    this transaction first). Nothing is taken when no code is waiting for the flow."""
    flow, account = attempt.flow, attempt.account
    waiting = await tx.email_codes.live(
        account.id, PURPOSE, now=tx.now(), bound_to=code_binding(flow)
    )
    if waiting is None:
        refuse(tx, EmailLinkExpired(NO_CODE), account_id=account.id, profile=flow.profile)
    await tx.pending_flows.use_attempt(flow.id_hash)


async def finish_code_link(tx: Tx, attempt: LinkAttempt, typed: str) -> FlowFinished:
    """Redeem the typed code for this flow and link, or refuse (audited): a wrong code
    says how many attempts are left (the flow's or the code's, whichever is fewer)."""
    flow, account = await relock(tx, attempt)
    email = _verified_email(tx, flow, account)
    try:
        proof = await redeem_code(
            tx, PURPOSE, account_id=account.id, typed=typed, bound_to=code_binding(flow)
        )
    except WrongEmailCode as wrong:
        left = min(flow.attempts_left, int(wrong.extra.get("attempts_left", 0)))
        refuse(tx, WrongEmailCode(attempts_left=left), account_id=account.id, profile=flow.profile)
    except EmailLinkRefused as refused:
        refuse(tx, refused, account_id=account.id, profile=flow.profile)
    if email_key(proof.email) != email_key(email):
        # The address changed after the code was sent: it proves the old one only.
        refuse(tx, EmailLinkExpired(NO_CODE), account_id=account.id, profile=flow.profile)
    return await link_proven(tx, flow, account, attempt.originator, method="code")


Begin = Callable[[Tx], Awaitable[LinkAttempt]]
After = Callable[[Tx, FlowFinished], Awaitable[object]]


async def link_with_code(
    ctx: Context, begin: Begin, typed: str, *, after: After | None = None
) -> FlowFinished:
    """``begin`` (``begin_code_link`` for a flow id, or the phone's hand-off variant) and
    the attempt's reservation in one committed transaction, then ``finish_code_link`` in
    a second; ``after`` runs there with the outcome (the phone closes its hand-off)."""
    async with ctx.transaction() as tx:
        attempt = await begin(tx)
        await reserve_code_attempt(tx, attempt)
    async with ctx.transaction() as tx:
        finished = await finish_code_link(tx, attempt, typed)
        if after is not None:
            await after(tx, finished)
        return finished
