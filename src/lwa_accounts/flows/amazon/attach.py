"""A signed-in account attaches or detaches its Amazon identity.

Both need a sign-in within ``settings.recent_auth_seconds`` or the password now
(``flows.credentials.require_recent_auth``). Attaching names no other account when the
Amazon identity is taken (409 ``amazon_linked_elsewhere``) and, for an account whose email
was never verified, ends its other sessions (security.md 9, "unexpired session").
Detaching is refused when Amazon is the last way to sign in; the check and the delete
happen under the account's row lock. Both notify the account's address
(``flows/notices.py``).
"""

from __future__ import annotations

from lwa_accounts.core.decide import LinkToCurrent, Reject, decide
from lwa_accounts.core.models import Account, AmazonProfile, Session
from lwa_accounts.errors import AlreadyLinked, AmazonLinkedElsewhere, LastSignInMethod, NotFound
from lwa_accounts.flows.amazon.identity import gather_facts, new_link, start_amazon_session
from lwa_accounts.flows.amazon.outcomes import Attached
from lwa_accounts.flows.amazon.profile import checked_prefill, sync_profile
from lwa_accounts.flows.amazon.refusals import refuse, reject_error
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.credentials import require_recent_auth
from lwa_accounts.flows.notices import describe_session, notify
from lwa_accounts.flows.sessions import SignedIn


async def attach_amazon(
    tx: Tx,
    profile: AmazonProfile,
    *,
    session: Session,
    account: Account,
    password: str | None,
    rotate_session: bool = False,
) -> Attached:
    """Link a verified Amazon identity to the signed-in account. ``rotate_session`` swaps
    the browser session for a new one (no fixation)."""
    await require_recent_auth(tx, session=session, account=account, password=password)
    locked = await tx.accounts.lock(account.id)
    assert locked is not None  # the session's own account
    prefill = checked_prefill(profile)
    found = await gather_facts(tx, profile, prefill, current=locked)
    decision = decide(found.facts)
    link = found.link
    if isinstance(decision, Reject):
        refuse(tx, reject_error(decision), account_id=account.id, profile=profile)
    if isinstance(decision, LinkToCurrent):
        try:
            link = await tx.identities.link(new_link(tx, account.id, profile, prefill))
        except (AmazonLinkedElsewhere, AlreadyLinked) as error:
            refuse(tx, error, account_id=account.id, profile=profile)
        # The link is made on the strength of the password (given now, or a sign-in with
        # it moments ago): as for a password-proven link, other sessions of an account whose
        # email was never verified end. The caller keeps its own (a bearer token) or gets a
        # new one below (``rotate_session``, browsers).
        ended = 0
        if not locked.email_verified:
            ended = await tx.sessions.revoke_all(account.id, except_session_id=session.id)
        tx.audit(
            Event.AMAZON_LINKED,
            account_id=account.id,
            profile=profile,
            detail=f"method=attach ended_sessions={ended}",
        )
        await notify(tx, locked, "amazon_linked", device=describe_session(session))
    assert link is not None
    locked, link = await sync_profile(tx, locked, link, profile)
    signed_in: SignedIn | None = None
    if rotate_session:
        signed_in = await start_amazon_session(
            tx,
            locked,
            profile,
            kind=session.kind,
            device_name=session.device_name,
            via="attach",
            replaces_session=True,
        )
        await tx.sessions.revoke(account.id, session.id)
    return Attached(account=locked, link=link, signed_in=signed_in)


async def detach_amazon(
    tx: Tx, *, session: Session, account: Account, password: str | None
) -> None:
    """Unlink Amazon; 409 ``last_sign_in_method`` when the account has no password."""
    await require_recent_auth(tx, session=session, account=account, password=password)
    locked = await tx.accounts.lock(account.id)
    assert locked is not None
    link = await tx.identities.get_for_account(locked.id)
    if link is None:
        raise NotFound("No Amazon account is linked.")
    profile = AmazonProfile(user_id=link.amazon_user_id, client_id=link.client_id)
    if not locked.has_password:
        refuse(tx, LastSignInMethod(), account_id=locked.id, profile=profile)
    await tx.identities.unlink(locked.id)
    tx.audit(Event.AMAZON_UNLINKED, account_id=locked.id, profile=profile)
    await notify(tx, locked, "amazon_unlinked", device=describe_session(session))
