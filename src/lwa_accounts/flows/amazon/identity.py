"""The pieces every Amazon use case shares: the facts ``core.decide`` needs, a new link,
a new account with its link, and the Amazon sign-in's session."""

from __future__ import annotations

from dataclasses import dataclass

from lwa_accounts.core.decide import AccountFacts, Facts, Prefill
from lwa_accounts.core.models import Account, AmazonLink, AmazonProfile, NewAccount, SessionKind
from lwa_accounts.flows.amazon.profile import link_seen
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.email_verification import send_on_creation
from lwa_accounts.flows.sessions import SignedIn, start_session


class Unknown:
    """Not looked up yet (distinct from "looked up: nobody")."""


UNKNOWN = Unknown()


def _facts_of(account: Account | None, link: AmazonLink | None) -> AccountFacts | None:
    if account is None:
        return None
    return AccountFacts(
        id=account.id,
        disabled=account.disabled,
        has_password=account.has_password,
        amazon_user_id=link.amazon_user_id if link else None,
        email_verified=account.email_verified,
    )


@dataclass(frozen=True, slots=True)
class Found:
    """What the database says about a verified Amazon identity, for ``core.decide``."""

    facts: Facts
    link: AmazonLink | None  # the identity's link, if any
    linked: Account | None  # the link's account, read with it
    by_email: Account | None  # the account holding the Amazon email, if any


async def gather_facts(
    tx: Tx, profile: AmazonProfile, prefill: Prefill, current: Account | None = None
) -> Found:
    found = await tx.identities.get_linked(profile.user_id)
    link, linked = found if found is not None else (None, None)
    # decide() reads the email's account only for an unlinked identity and no current
    # account: a returning sign-in (or an attach) never looks the email up.
    by_email = (
        await tx.accounts.get_by_email(prefill.email)
        if prefill.email and link is None and current is None
        else None
    )
    by_email_link = await tx.identities.get_for_account(by_email.id) if by_email else None
    current_link = await tx.identities.get_for_account(current.id) if current else None
    facts = Facts(
        amazon_user_id=profile.user_id,
        profile=prefill,
        linked_account=_facts_of(linked, link),
        email_account=_facts_of(by_email, by_email_link),
        current_account=_facts_of(current, current_link),
        policy=tx.deps.policy,
    )
    return Found(facts=facts, link=link, linked=linked, by_email=by_email)


def new_link(tx: Tx, account_id: str, profile: AmazonProfile, prefill: Prefill) -> AmazonLink:
    """A new link, holding what Amazon sent (an existing account's own fields change only
    by the sync policy: ``profile.sync_profile``)."""
    now = tx.now()
    return link_seen(
        AmazonLink(
            amazon_user_id=profile.user_id,
            account_id=account_id,
            client_id=profile.client_id,
            name=None,
            email=None,
            postal_code=None,
            linked_at=now,
            last_sign_in_at=None,
        ),
        profile,
        prefill,
        now,
    )


async def create_linked_account(
    tx: Tx,
    profile: AmazonProfile,
    prefill: Prefill,
    *,
    username: str,
    email_holder: Account | Unknown | None = UNKNOWN,
) -> tuple[Account, AmazonLink]:
    """Create the account and its link in one savepoint: both or neither; then queue the
    verification mail of its address.

    An address another account holds *unverified* (``email_holder``: the caller's look-up,
    if it made one) is no reason to refuse, nor to give this account that account's
    password step (``core.decide``): the new account is made without it and the mail
    goes to it all the same, so whoever reads it can claim it (``flows/email_claims.py``).
    One held verified stays refused (EmailTaken) as before."""
    email = prefill.email
    holder = email_holder
    if isinstance(holder, Unknown):
        holder = await tx.accounts.get_by_email(email) if email else None
    claim = email if holder is not None and not holder.email_verified else None
    async with tx.identities.atomic():
        account = await tx.accounts.create(
            NewAccount(
                username=username,
                email=None if claim else email,
                name=prefill.name or username,
                password_hash=None,
                email_verified=False,  # Amazon's email is a hint, not proof
                postal_code=prefill.postal_code,
            )
        )
        link = await tx.identities.link(new_link(tx, account.id, profile, prefill))
    tx.audit(Event.AMAZON_ACCOUNT_CREATED, account_id=account.id, profile=profile)
    if email:
        reason = "claim" if claim else "registration"
        await send_on_creation(tx, account, email, reason=reason, claim=claim is not None)
    return account, link


async def start_amazon_session(
    tx: Tx,
    account: Account,
    profile: AmazonProfile,
    *,
    kind: SessionKind,
    device_name: str | None,
    via: str,
    replaces_session: bool = False,
) -> SignedIn:
    """A new session (exactly like a password sign-in's), audited as one
    ``amazon.signed_in`` row that names the session (not a second ``session.started``).
    ``replaces_session``: the caller's own session is swapped (no new-device notice)."""
    return await start_session(
        tx,
        account,
        kind=kind,
        device_name=device_name,
        method="amazon",
        event=Event.AMAZON_SIGNED_IN,
        profile=profile,
        detail=f"via={via}",
        replaces_session=replaces_session,
    )
