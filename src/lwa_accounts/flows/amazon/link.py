"""Link by the local password: the guide's "ask for the local password before linking".

An account holds the Amazon email, so only its password may join the two (the email is a
hint, not proof). Request handlers run three steps so argon2 holds no lock:
``begin_link`` (short transaction: the flow and its target account, an early 429 when the
sign-in throttle is spent) -> ``check_link_password`` (no database: the throttle
reservation and argon2) -> ``finish_link`` (second transaction: re-checks that the flow is
still pending and the password unchanged, then links). ``link_with_password`` is that
sequence (``flows.phases.in_phases``), called by the pages, the JSON API and the phone.
Password attempts go through the sign-in throttle and spend the flow's own attempts (a
kept write: a refused guess stays spent through the rollback).

The other proof, a code e-mailed to the account's verified address, is ``link_by_code``;
both end in ``link_proven`` (the link, the sessions rule, the audit event, the profile
sync and the flow's single use), so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from lwa_accounts.core.models import Account, PendingFlow
from lwa_accounts.errors import (
    AccountDisabled,
    AmazonLinkedElsewhere,
    FlowExpired,
    FlowNotFound,
    InvalidCredentials,
    LwaAccountsError,
    TooManyAttempts,
)
from lwa_accounts.flows.amazon.identity import new_link
from lwa_accounts.flows.amazon.outcomes import FlowFinished
from lwa_accounts.flows.amazon.pending import Originator, finish_flow, load_flow
from lwa_accounts.flows.amazon.profile import checked_prefill, sync_profile
from lwa_accounts.flows.amazon.refusals import refuse
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.known_devices import recognise
from lwa_accounts.flows.notices import notify
from lwa_accounts.flows.passwords import PasswordCheck, check_password, record_password_check
from lwa_accounts.flows.phases import in_phases


@dataclass(frozen=True, slots=True)
class LinkAttempt:
    """A link step found by ``begin_link``: its password is checked outside any
    transaction (``check_link_password``), then ``finish_link`` re-checks and links."""

    flow_id: str = field(repr=False)
    flow: PendingFlow
    account: Account
    originator: Originator


# How the local account was proven (the ``method=`` of ``amazon.linked``).
ProofMethod = Literal["password", "code"]
Start = Callable[[Tx, str, Originator], Awaitable[LinkAttempt]]


async def link_target(tx: Tx, flow_id: str, originator: Originator) -> LinkAttempt:
    """The pending link flow and its target account, or an audited refusal (whatever
    proves the account next)."""
    flow = await load_flow(tx, flow_id, originator)
    if flow.kind != "link" or flow.target_account_id is None:
        refuse(tx, FlowNotFound(), profile=flow.profile)
    account = await tx.accounts.get(flow.target_account_id)
    if account is None:
        refuse(tx, FlowExpired(), profile=flow.profile)
    return LinkAttempt(flow_id=flow_id, flow=flow, account=account, originator=originator)


def require_attempts(tx: Tx, attempt: LinkAttempt) -> None:
    """A flow whose attempts are spent is over, for a password and a code alike."""
    if attempt.flow.attempts_left <= 0:
        refuse(tx, FlowExpired(), account_id=attempt.account.id, profile=attempt.flow.profile)


async def begin_link(tx: Tx, flow_id: str, originator: Originator) -> LinkAttempt:
    """The pending link flow and its target account, ready for a password, or an audited
    refusal."""
    attempt = await link_target(tx, flow_id, originator)
    # An early refusal when the sign-in throttle is spent, so the N+1th wrong password is a
    # 429 like on /signin (the attempt itself is reserved in check_link_password).
    try:
        device = recognise(tx.context, attempt.account)
        await tx.deps.throttle.peek_password(attempt.account.id, tx.client.ip, device=device)
    except TooManyAttempts as throttled:
        refuse(tx, throttled, account_id=attempt.account.id, profile=attempt.flow.profile)
    require_attempts(tx, attempt)
    return attempt


async def check_link_password(ctx: Context, attempt: LinkAttempt, password: str) -> PasswordCheck:
    """Throttle (the attempt reserved before argon2) and argon2 against the target
    account; touches no database."""
    return await check_password(
        ctx, account=attempt.account, account_key=attempt.account.id, password=password
    )


async def finish_link(tx: Tx, attempt: LinkAttempt, check: PasswordCheck) -> FlowFinished:
    """Record the check and, if the flow is still pending and the password it was checked
    against is still the account's, link and finish the flow."""
    flow, account = await relock(tx, attempt)
    wrong: LwaAccountsError | None = None
    try:
        # Audits a wrong or throttled password, and refuses one changed since it was checked.
        await record_password_check(tx, check)
    except TooManyAttempts as throttled:
        # Throttled before argon2: 429, however far concurrent attempts spent the flow.
        refuse(tx, throttled, account_id=account.id, profile=flow.profile)
    except LwaAccountsError as error:
        wrong = error
    if flow.attempts_left <= 0:  # spent by concurrent attempts meanwhile
        refuse(tx, FlowExpired(), account_id=account.id, profile=flow.profile)
    if wrong is not None:
        if isinstance(wrong, InvalidCredentials):
            id_hash = flow.id_hash
            flow_left = await tx.keep(lambda stores: stores.pending_flows.use_attempt(id_hash))
            throttle_left = int(wrong.extra.get("attempts_left", flow_left))
            wrong = InvalidCredentials(
                "The password is incorrect.", attempts_left=min(flow_left, throttle_left)
            )
        refuse(tx, wrong, account_id=account.id, profile=flow.profile)
    return await link_proven(tx, flow, account, attempt.originator, method="password")


async def relock(tx: Tx, attempt: LinkAttempt) -> tuple[PendingFlow, Account]:
    """The second transaction's look again: the flow still pending (used or expired
    meanwhile?) and its target account, locked until the link is made."""
    flow = await load_flow(tx, attempt.flow_id, attempt.originator)
    account = await tx.accounts.lock(attempt.account.id)
    if account is None or flow.target_account_id != account.id:
        refuse(tx, FlowExpired(), profile=flow.profile)
    return flow, account


async def link_proven(
    tx: Tx,
    flow: PendingFlow,
    account: Account,
    originator: Originator,
    *,
    method: ProofMethod,
) -> FlowFinished:
    """The account was proven (its password, or a code sent to its verified address):
    link and finish the flow (the account row is locked by the caller)."""
    if account.disabled:
        refuse(tx, AccountDisabled(), account_id=account.id, profile=flow.profile)
    link = await tx.identities.get_by_amazon_user_id(flow.profile.user_id)
    if link is None:
        prefill = checked_prefill(flow.profile)
        link = await tx.identities.link(new_link(tx, account.id, flow.profile, prefill))
    elif link.account_id != account.id:
        refuse(tx, AmazonLinkedElsewhere(), account_id=account.id, profile=flow.profile)
    if not account.email_verified:
        # Whoever registered this unverified address may still hold a session in it
        # ("unexpired session" pre-hijacking): only the password prover stays signed in.
        # (A code goes only to a verified address, so this is the password's case.)
        await tx.sessions.revoke_all(account.id)
    tx.audit(
        Event.AMAZON_LINKED, account_id=account.id, profile=flow.profile, detail=f"method={method}"
    )
    await notify(tx, account, "amazon_linked")
    account, _ = await sync_profile(tx, account, link, flow.profile)
    return await finish_flow(tx, flow, account, originator, created=False)


async def confirm_link(tx: Tx, flow_id: str, password: str, originator: Originator) -> FlowFinished:
    """All three steps in one transaction (tests, scripts); request handlers use
    ``link_with_password``."""
    attempt = await begin_link(tx, flow_id, originator)
    check = await check_link_password(tx.context, attempt, password)
    return await finish_link(tx, attempt, check)


Begin = Callable[[Tx], Awaitable[LinkAttempt]]
After = Callable[[Tx, FlowFinished], Awaitable[object]]


async def link_with_password(
    ctx: Context, begin: Begin, password: str, *, after: After | None = None
) -> FlowFinished:
    """``begin`` (``begin_link`` for a flow id, or the phone's hand-off variant) in one
    short transaction, argon2 outside any, ``finish_link`` in a second; ``after`` runs in
    that second transaction with the outcome (the phone closes its hand-off code there)."""

    async def check(attempt: LinkAttempt) -> PasswordCheck:
        return await check_link_password(ctx, attempt, password)

    async def finish(tx: Tx, attempt: LinkAttempt, checked: PasswordCheck) -> FlowFinished:
        finished = await finish_link(tx, attempt, checked)
        if after is not None:
            await after(tx, finished)
        return finished

    return await in_phases(ctx, begin, check, finish)
