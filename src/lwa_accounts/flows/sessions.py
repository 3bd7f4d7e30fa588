"""Starting and ending sessions: THE one way any sign-in creates a session.

Password sign-in, Amazon sign-in and device sign-in all end in ``start_session``, so a
session created "with Amazon" is exactly like one created with a password: same token
strength, same expiry rules, same audit trail, and the same "new device" notice when the
browser or device was not seen before (``flows/new_devices.py``). Flows never commit;
the edge does.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from lwa_accounts.core.models import Account, AmazonProfile, Session, SessionKind
from lwa_accounts.errors import AccountDisabled
from lwa_accounts.flows import new_devices
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.notices import describe_session, how_signed_in, notify, recipient

DEVICE_NAME_MAX = 100
# Control, format (incl. bidi overrides), surrogate, private-use and unassigned characters.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
USER_AGENT_MAX = 512


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session. ``token`` is shown to the client once and stored only hashed.
    ``browser_memory``: for a browser, the signed value the edge keeps in its "known
    browser" cookie (``flows/new_devices.py``)."""

    token: str = field(repr=False)
    session: Session
    account: Account
    # After a password sign-in: this client's known-device proof (flows/known_devices.py),
    # for the browser's cookie or the API's ``device_token``.
    device_proof: str | None = field(default=None, repr=False)
    browser_memory: str | None = field(default=None, repr=False)


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
    replaces_session: bool = False,
) -> SignedIn:
    """Create a fresh session (never reuses a token: no fixation) and audit it.

    ``method`` says how the person proved who they are (``password``, ``amazon``,
    ``device``...); it goes into the audit log and the new-device notice. The client's IP
    and user agent are the request's (``tx.client``). One audit row: ``event``
    (``session.started``, or the sign-in's own kind such as ``amazon.signed_in``) naming
    method, kind and session, with ``detail`` in front. A browser or device the account
    has not seen (``new_devices.seen_before``) gets the account a ``new_device`` notice,
    unless the session ``replaces_session`` one of the same browser (re-authentication).
    """
    if account.disabled:
        raise AccountDisabled()
    device_name = _clip(device_name, DEVICE_NAME_MAX)
    user_agent = _clip(tx.client.user_agent, USER_AGENT_MAX)
    # Looked at only when a notice could go out: no read for most sign-ins.
    new_device = (
        not replaces_session
        and recipient(account, "new_device") is not None
        and not await new_devices.seen_before(
            tx, account, kind=kind, device_name=device_name, user_agent=user_agent
        )
    )
    token, session = await tx.sessions.create(
        account.id, kind, device_name=device_name, user_agent=user_agent, ip=tx.client.ip
    )
    said = f"method={method} kind={kind} session={session.id}"
    tx.audit(
        event,
        account_id=account.id,
        profile=profile,
        detail=f"{detail} {said}" if detail else said,
    )
    if new_device:
        await notify(
            tx,
            account,
            "new_device",
            device=describe_session(session),
            how=how_signed_in(method),
        )
    memory = None
    if kind == "browser":
        memory = new_devices.remember(
            tx.settings, tx.client.known_browser, account.id, now=tx.now()
        )
    return SignedIn(token=token, session=session, account=account, browser_memory=memory)


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
