"""Has this browser or device signed in to the account before? (The "new device" notice.)

The rule is cheap and errs towards telling the person:

- **A browser** is known when it carries the signed "known browser" memory naming the
  account: a cookie the edge sets at every browser sign-in (``SignedIn.browser_memory``,
  ``web/cookies.py``), holding digests of the last ``KEEP`` accounts signed in there,
  signed for its own purpose (``signing.py``) so no other value passes for it and nobody
  can mint one for an account. No database read. A private window, cleared cookies or
  another browser count as new (a notice the person can ignore); an intruder's browser
  never has the victim's memory, whatever user agent it claims.
- **A device** (a session of kind ``device``: TVs, apps and scripts on the JSON API) keeps
  no cookie. It is known when a *live* session of the account already has the same device
  name and user agent (a script signing in again, a TV paired twice). One read of the
  account's live sessions, made only when a notice could go out at all. A device that
  copies both the name and the user agent of a live session gets no notice: the rule
  stops repeated mail for honest re-sign-ins, it is not a defence (the sign-in itself
  still needed the password, Amazon or an approval on a signed-in phone).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Final

from lwa_accounts import signing
from lwa_accounts.core.models import Account, SessionKind
from lwa_accounts.flows.context import Tx
from lwa_accounts.settings import Settings

PURPOSE: Final = "known-browser"
MAX_AGE: Final = 400 * 24 * 3600  # browsers keep no cookie longer
KEEP: Final = 8  # accounts remembered per browser (a shared computer)


def account_digest(account_id: str) -> str:
    """What the memory holds for an account: a digest, not the id (the cookie is readable
    on a shared computer; it need not say which accounts signed in there)."""
    digest = hashlib.sha256(f"{PURPOSE}:{account_id}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def remembered(settings: Settings, memory: str | None, *, now: datetime) -> list[str]:
    """The account digests a browser's memory vouches for (none if forged, old, absent)."""
    data = signing.loads(settings, PURPOSE, memory, now=now, max_age=MAX_AGE)
    found = data.get("a") if data is not None else None
    if not isinstance(found, list):
        return []
    return [item for item in found if isinstance(item, str)][:KEEP]


def remember(settings: Settings, memory: str | None, account_id: str, *, now: datetime) -> str:
    """The browser's new memory: this account first, then up to ``KEEP - 1`` earlier ones."""
    digest = account_digest(account_id)
    earlier = [item for item in remembered(settings, memory, now=now) if item != digest]
    return signing.dumps(settings, PURPOSE, {"a": [digest, *earlier][:KEEP]}, now=now)


async def seen_before(
    tx: Tx,
    account: Account,
    *,
    kind: SessionKind,
    device_name: str | None,
    user_agent: str | None,
) -> bool:
    """Whether this sign-in comes from a browser or device the account knows (above);
    ``device_name`` and ``user_agent`` as the new session will store them."""
    if kind == "browser":
        return account_digest(account.id) in remembered(
            tx.settings, tx.client.known_browser, now=tx.now()
        )
    return any(
        session.kind == "device"
        and session.device_name == device_name
        and session.user_agent == user_agent
        for session in await tx.sessions.list_for_account(account.id)
    )
