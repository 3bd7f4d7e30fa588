"""Sign in with a verified Amazon identity: find, create or start linking the account.

The one path for the web callback, devices posting an Amazon token, and server-assisted
code-based linking. The edge verifies the token with Amazon first, *outside* the
transaction (tokeninfo ``aud`` in the allow-list, then the profile), so a slow or failing
Amazon holds no database lock and writes nothing. Facts -> ``core.decide.decide`` -> act:
only a link (keyed by ``user_id``) ever signs in; an email match is only ever a link step
that asks for the local password, because Amazon's email carries no proof of ownership.

Create-and-link runs in one savepoint; on a unique-constraint race, or when its reads
straddle a concurrent first sign-in's commit, it looks again (audited
``amazon.signin_conflict``), so N parallel first sign-ins of one Amazon user give one
account, one link, N sessions.
"""

from __future__ import annotations

from dataclasses import replace

from lwa_accounts.core.decide import (
    ConfirmLink,
    Create,
    Decision,
    Facts,
    LinkToCurrent,
    Register,
    Reject,
    SignIn,
    decide,
)
from lwa_accounts.core.models import AmazonProfile, SessionKind
from lwa_accounts.errors import AlreadyLinked, AmazonLinkedElsewhere, EmailTaken, UsernameTaken
from lwa_accounts.flows.amazon.identity import (
    Found,
    create_linked_account,
    gather_facts,
    start_amazon_session,
)
from lwa_accounts.flows.amazon.outcomes import (
    LinkRequired,
    RegistrationRequired,
    SignedInWithAmazon,
    SignInOutcome,
)
from lwa_accounts.flows.amazon.pending import Starter, new_flow
from lwa_accounts.flows.amazon.profile import (
    available_username,
    checked_prefill,
    sync_profile,
    username_base,
)
from lwa_accounts.flows.amazon.refusals import refuse, reject_error
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx

CONFLICT_RETRIES = 3


async def sign_in_with_profile(
    tx: Tx,
    profile: AmazonProfile,
    *,
    kind: SessionKind,
    starter: Starter,
    device_name: str | None = None,
) -> SignInOutcome:
    """Find, create or start linking the account of a verified Amazon identity.
    ``starter`` owns any link or registration step this starts."""
    prefill = checked_prefill(profile)
    for attempt in range(CONFLICT_RETRIES):
        found = await gather_facts(tx, profile, prefill)
        if _saw_concurrent_link(found.facts) and attempt < CONFLICT_RETRIES - 1:
            # Under READ COMMITTED each read sees the latest commit: a concurrent first
            # sign-in committed between our look-up by user_id (nothing) and by email (its
            # new account, linked to *this* Amazon user). Without this the winner's own
            # link would be refused as "another Amazon account's" (409). Look again.
            _audit_conflict(tx, profile, "read")
            continue
        decision = decide(found.facts)
        if isinstance(decision, Reject):
            # Outside the retry below: a refusal is an answer, not a race to retry.
            link, by_email = found.link, found.by_email
            holder = link.account_id if link else (by_email.id if by_email else None)
            refuse(tx, reject_error(decision), account_id=holder, profile=profile)
        try:
            return await _act(
                tx,
                decision,
                found,
                profile,
                kind=kind,
                device_name=device_name,
                starter=starter,
            )
        except (UsernameTaken, EmailTaken, AmazonLinkedElsewhere, AlreadyLinked) as conflict:
            # A concurrent sign-in created or linked first (the savepoint undid our half, and
            # the unique index made us wait for its commit): look again, link by user_id
            # first, and, most likely, sign in to what it made.
            if attempt == CONFLICT_RETRIES - 1:
                raise
            _audit_conflict(tx, profile, conflict.code)
    raise AssertionError("unreachable")  # pragma: no cover


def _saw_concurrent_link(facts: Facts) -> bool:
    """The email's account is linked to this very Amazon user, yet the look-up by user_id
    found no link: the facts straddle a concurrent commit."""
    return (
        facts.linked_account is None
        and facts.email_account is not None
        and facts.email_account.amazon_user_id == facts.amazon_user_id
    )


def _audit_conflict(tx: Tx, profile: AmazonProfile, reason: str) -> None:
    # Lost the create-and-link race to a parallel first sign-in of the same Amazon user;
    # counted so the race (and how often it happens) is visible in `lwa-accounts audit`.
    tx.audit(Event.AMAZON_SIGNIN_CONFLICT, profile=profile, detail=f"reason={reason}")


async def _act(
    tx: Tx,
    decision: Decision,
    found: Found,
    profile: AmazonProfile,
    *,
    kind: SessionKind,
    device_name: str | None,
    starter: Starter,
) -> SignInOutcome:
    link, by_email = found.link, found.by_email
    match decision:
        case SignIn(account_id):
            account = found.linked  # read with the link: no second look-up
            assert account is not None
            assert account.id == account_id
            assert link is not None
            account, seen = await sync_profile(tx, account, link, profile)
            signed_in = await start_amazon_session(
                tx, account, profile, kind=kind, device_name=device_name, via="token"
            )
            return SignedInWithAmazon(created=False, signed_in=signed_in, link=seen)
        case Create(prefill):
            username = await available_username(tx, username_base(prefill.email, prefill.name))
            account, new = await create_linked_account(
                tx, profile, prefill, username=username, email_holder=found.by_email
            )
            signed_in = await start_amazon_session(
                tx, account, profile, kind=kind, device_name=device_name, via="new_account"
            )
            return SignedInWithAmazon(created=True, signed_in=signed_in, link=new)
        case ConfirmLink(account_id, can_register_instead):
            assert by_email is not None
            assert by_email.email is not None
            flow_id, flow = await new_flow(
                tx,
                "link",
                profile,
                target_account_id=account_id,
                can_register_instead=can_register_instead,
                missing=frozenset(),
                kind=kind,
                device_name=device_name,
                starter=starter,
            )
            return LinkRequired(flow_id=flow_id, flow=flow, email=by_email.email)
        case Register(prefill, missing):
            flow_id, flow = await new_flow(
                tx,
                "registration",
                # Without an email decide() dropped (another account's): the form must not
                # offer it again (registration_fields prefills from the stored profile).
                profile if prefill.email else replace(profile, email=None),
                target_account_id=None,
                can_register_instead=False,
                missing=missing,
                kind=kind,
                device_name=device_name,
                starter=starter,
            )
            return RegistrationRequired(
                flow_id=flow_id, flow=flow, prefill=prefill, required=missing
            )
        case Reject() | LinkToCurrent():  # pragma: no cover - refused above; attach only
            raise AssertionError(f"{decision!r} outside its use case")
