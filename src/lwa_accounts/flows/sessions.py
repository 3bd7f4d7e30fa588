"""Starting and ending sessions: THE one way any sign-in creates a session.

Password sign-in, Amazon sign-in and device sign-in all end in ``start_session``, so a
session created "with Amazon" is exactly like one created with a password: same token
strength, same expiry rules, same audit trail. Flows never commit; the edge does.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from lwa_accounts.core.models import Account, AmazonProfile, Session, SessionKind
from lwa_accounts.errors import AccountDisabled
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx

DEVICE_NAME_MAX = 100
# Control, format (incl. bidi overrides), surrogate, private-use and unassigned characters.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
USER_AGENT_MAX = 512


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session. ``token`` is shown to the client once and stored only hashed."""

    token: str = field(repr=False)
    session: Session
    account: Account
    # After a password sign-in: this client's known-device proof (flows/known_devices.py),
    # for the browser's cookie or the API's ``device_token``.
    device_proof: str | None = field(default=None, repr=False)


async def start_session(
    tx: Tx,
    account: Account,
    *,
    kind: SessionKind,
    device_name: str | None = None,
    method: str = "password",
    event: Event = Event.SESSION_STARTED,
    profile: AmazonProfile | None = None,
    detail: str | None = None,
) -> SignedIn:
    """Create a fresh session (never reuses a token: no fixation) and audit it.

    ``method`` says how the person proved who they are (``password``, ``amazon``,
    ``device``...); it goes only into the audit log. The client's IP and user agent are the
    request's (``tx.client``). One audit row: ``event`` (``session.started``, or the
    sign-in's own kind such as ``amazon.signed_in``) naming method, kind and session, with
    ``detail`` in front.
    """
    if account.disabled:
        raise AccountDisabled()
    token, session = await tx.sessions.create(
        account.id,
        kind,
        device_name=_clip(device_name, DEVICE_NAME_MAX),
        user_agent=_clip(tx.client.user_agent, USER_AGENT_MAX),
        ip=tx.client.ip,
    )
    said = f"method={method} kind={kind} session={session.id}"
    tx.audit(
        event,
        account_id=account.id,
        profile=profile,
        detail=f"{detail} {said}" if detail else said,
    )
    return SignedIn(token=token, session=session, account=account)


async def keep_alive(ctx: Context, session: Session) -> None:
    """After a read-only session check: slide the idle expiry when it is due (at most once
    per ``SESSION_TOUCH_INTERVAL`` per session), in a short write transaction of its own.
    Between touches the stored expiry stands, so an idle session still ends on time."""
    if session.touch_due(ctx.now()):
        async with ctx.transaction() as tx:
            await tx.sessions.touch(session)


async def end_session(tx: Tx, session: Session) -> bool:
    """Sign out one session; False if it had already ended."""
    ended = await tx.sessions.revoke(session.account_id, session.id)
    tx.audit(Event.SESSION_ENDED, account_id=session.account_id, detail=f"session={session.id}")
    return ended


def _clip(value: str | None, limit: int) -> str | None:
    """Shown on the account page and stored as text: no control characters (PostgreSQL
    refuses NUL), bounded length."""
    if value is None:
        return None
    value = "".join(ch for ch in value if unicodedata.category(ch) not in _UNPRINTABLE).strip()
    return value[:limit] or None
