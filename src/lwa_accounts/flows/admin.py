"""What an operator does to an account from the command line (``lwa-accounts admin``).

The reads take ``ctx``: ``find_account`` reads in one transaction, ``export_audit`` pages
through the audit log in one short transaction per page and yields between them, so an
export of any size holds one page in memory and never blocks writers for long. The
actions take ``tx`` and the operator's name: each looks everything up first and raises
before writing anything (unknown account, session or link), so a refusal changes nothing;
what it does change is recorded as one ``admin.*`` event whose detail starts with
``operator=NAME``, committed with the change itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from lwa_accounts.core.models import Account, AmazonLink, AmazonProfile, AuditEvent, Session
from lwa_accounts.errors import LastSignInMethod, NotFound, ValidationFailed
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.notices import notify
from lwa_accounts.interfaces import Stores

OPERATOR_MAX = 64
EVENTS_MAX = 1000
EXPORT_PAGE = 500
# Longer than any id we or a kit table issue: looked up, it could only miss.
_ID_MAX = 128

Lookup = Literal["id", "username", "email", "amazon_user_id"]


def check_operator(name: str) -> str:
    """The operator's name as the audit log records it: 1 to 64 printable characters and
    no white space (the detail is space-separated ``key=value``). Raises ValidationFailed."""
    if not 0 < len(name) <= OPERATOR_MAX:
        message = f"an operator's name has 1 to {OPERATOR_MAX} characters"
    elif not name.isprintable() or any(ch.isspace() for ch in name):
        message = "an operator's name is printable characters without spaces"
    else:
        return name
    raise ValidationFailed(message, errors={"operator": message})


# ---- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountReport:
    """An account as support sees it: never a token or a password hash."""

    account: Account
    link: AmazonLink | None
    sessions: tuple[Session, ...]  # live ones, most recently used first
    events: tuple[AuditEvent, ...]  # newest first


async def find_account(ctx: Context, by: Lookup, value: str, *, events: int = 20) -> AccountReport:
    """The account found by its id, username, e-mail or Amazon user id, with its Amazon
    link, live sessions and newest ``events`` audit events; NotFound otherwise."""
    if not 0 <= events <= EVENTS_MAX:
        raise ValidationFailed(errors={"events": f"use 0 to {EVENTS_MAX}"})
    async with ctx.database.transaction() as stores:
        account = await _lookup(stores, by, value)
        if account is None:
            raise NotFound("No account matches.")
        link = await stores.identities.get_for_account(account.id)
        sessions = await stores.sessions.list_for_account(account.id)
        recent = await stores.audit.list(account_id=account.id, limit=events) if events else []
    return AccountReport(account, link, tuple(sessions), tuple(recent))


async def _lookup(stores: Stores, by: Lookup, value: str) -> Account | None:
    if not value or len(value) > 320:  # no id, username or address is longer
        return None
    match by:
        case "id":
            return await stores.accounts.get(value)
        case "username":
            return await stores.accounts.get_by_username(value)
        case "email":
            return await stores.accounts.get_by_email(value)
        case "amazon_user_id":
            link = await stores.identities.get_by_amazon_user_id(value)
            return await stores.accounts.get(link.account_id) if link is not None else None


async def export_audit(
    ctx: Context,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    account_id: str | None = None,
    page_size: int = EXPORT_PAGE,
) -> AsyncIterator[AuditEvent]:
    """Every audit event at or after ``since`` and before ``until`` (of one account, if
    given), oldest first. Events written behind the export's position while it runs are
    not included: give ``until`` in the past for a fixed set."""
    if since is not None and until is not None and since >= until:
        raise ValidationFailed(errors={"until": "must be later than since"})
    after: tuple[datetime, int] | None = None
    while True:
        async with ctx.database.transaction() as stores:
            page = await stores.audit.page(
                after=after, since=since, until=until, account_id=account_id, limit=page_size
            )
        for record in page:
            yield record.event
        if len(page) < page_size:
            return
        after = page[-1].position


# ---- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountChange:
    """What ``disable_account`` / ``enable_account`` did: ``changed`` is False when the
    account already was so (nothing recorded then, unless sessions were ended)."""

    account: Account
    changed: bool
    ended_sessions: int = 0


async def _account(tx: Tx, account_id: str) -> Account:
    """The account under its row lock, so a parallel sign-in or link waits for us."""
    account = await tx.accounts.lock(account_id) if 0 < len(account_id) <= _ID_MAX else None
    if account is None:
        raise NotFound("No such account.")
    return account


async def unlink_amazon(
    tx: Tx,
    account_id: str,
    *,
    operator: str,
    amazon_user_id: str | None = None,
    force: bool = False,
) -> AmazonLink:
    """Detach the account's Amazon identity (only if it is ``amazon_user_id``, when given).

    An account without a password would be left with no way to sign in: refused
    (``last_sign_in_method``) unless ``force``. Sessions stay; ``revoke_sessions`` ends them.
    The account's address is told (``amazon_unlinked``, "by our support team").
    """
    operator = check_operator(operator)
    account = await _account(tx, account_id)
    link = await tx.identities.get_for_account(account.id)
    if link is None or (amazon_user_id is not None and link.amazon_user_id != amazon_user_id):
        raise NotFound(
            "No Amazon account is linked to this account."
            if link is None
            else "That Amazon account is not the one linked to this account."
        )
    if not account.has_password and not force:
        raise LastSignInMethod(
            "This account has no password: unlinking Amazon leaves it no way to sign in."
        )
    await tx.identities.unlink(account.id)
    tx.audit(
        Event.ADMIN_UNLINKED_AMAZON,
        account_id=account.id,
        profile=AmazonProfile(user_id=link.amazon_user_id, client_id=link.client_id),
        detail=f"operator={operator}" + (" forced=yes" if not account.has_password else ""),
    )
    await notify(tx, account, "amazon_unlinked", by_support=True)
    return link


async def revoke_session(tx: Tx, account_id: str, session_id: str, *, operator: str) -> Session:
    """End one live session of the account; NotFound for any other id."""
    operator = check_operator(operator)
    account = await _account(tx, account_id)
    session = await tx.sessions.get(session_id) if 0 < len(session_id) <= _ID_MAX else None
    if session is None or session.account_id != account.id:
        raise NotFound("This account has no such session.")
    if session.revoked_at is not None or tx.now() >= session.expires_at:
        raise NotFound("That session has already ended.")
    await tx.sessions.revoke(account.id, session.id)
    tx.audit(
        Event.ADMIN_SESSION_REVOKED,
        account_id=account.id,
        detail=f"operator={operator} session={session.id}",
    )
    return session


async def revoke_sessions(tx: Tx, account_id: str, *, operator: str) -> int:
    """End every session of the account; how many were still open."""
    operator = check_operator(operator)
    account = await _account(tx, account_id)
    ended = await tx.sessions.revoke_all(account.id)
    tx.audit(
        Event.ADMIN_SESSIONS_REVOKED,
        account_id=account.id,
        detail=f"operator={operator} ended_sessions={ended}",
    )
    return ended


async def disable_account(tx: Tx, account_id: str, *, operator: str) -> AccountChange:
    """No sign-in of any kind (password, Amazon, device approval), and every session
    ended (a disabled account's sessions no longer resolve anyway; ending them keeps it so
    after an ``enable``)."""
    operator = check_operator(operator)
    account = await _account(tx, account_id)
    changed = not account.disabled
    if changed:
        account = await tx.accounts.set_disabled(account.id, True)
    ended = await tx.sessions.revoke_all(account.id)
    if changed or ended:
        tx.audit(
            Event.ADMIN_ACCOUNT_DISABLED,
            account_id=account.id,
            detail=f"operator={operator} ended_sessions={ended}",
        )
    return AccountChange(account, changed, ended)


async def enable_account(tx: Tx, account_id: str, *, operator: str) -> AccountChange:
    """Allow sign-in again (sessions ended by ``disable`` stay ended)."""
    operator = check_operator(operator)
    account = await _account(tx, account_id)
    if not account.disabled:
        return AccountChange(account, changed=False)
    account = await tx.accounts.set_disabled(account.id, False)
    tx.audit(Event.ADMIN_ACCOUNT_ENABLED, account_id=account.id, detail=f"operator={operator}")
    return AccountChange(account, changed=True)
