"""Notices by mail: tell the account's owner what just changed, with a way to undo it.

``notify(tx, account, notice)`` renders ``mail/templates/notice_<notice>.*`` (what
happened, when, from which browser or device) and queues it with ``Tx.send_mail`` in the
caller's transaction, so a rolled-back change sends nothing. Every notice carries a
"This wasn't me" link (``flows/not_me.py``): signed for the account and the notice's
time, good for 7 days, it signs the account out everywhere and unlinks Amazon.

Who gets it (``recipient``): the account's address, or ``to`` (an e-mail change notifies
the old address). A notice about a change (Amazon linked or unlinked, password changed or
reset, e-mail changed) goes to the address even when it was never verified: it tells the
person something they need to know, and its link can only sign the account out, never let
anyone in, so at worst a stranger holding a mistyped address signs the account out. Such
a change also needs the account's password, Amazon or a recent sign-in, so it cannot be
repeated against an address at will. A new-device notice goes only to a *verified*
address: anyone knowing the password of an account registered with someone else's address
could otherwise send that address a mail per sign-in.

What a mail says about the client: the browser and system named from its user agent from
a fixed list (``core/user_agents.py``: never the raw string), a device's name as it gave
it (clipped), and no IP address (a mail is forwarded and kept where we cannot see; the
audit log and the sessions table keep the address).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Final, Literal, get_args

from lwa_accounts.core import user_agents
from lwa_accounts.core.masking import mask_email
from lwa_accounts.core.models import Account, Session, SessionKind
from lwa_accounts.flows import not_me
from lwa_accounts.flows.context import Tx

Notice = Literal[
    "amazon_linked",
    "amazon_unlinked",
    "new_device",
    "password_changed",
    "password_reset",
    "email_changed",
]
NOTICES: Final[tuple[Notice, ...]] = get_args(Notice)

_VERIFIED_ONLY: Final[frozenset[Notice]] = frozenset({"new_device"})
# Values a template may leave out (StrictUndefined refuses any other missing value).
_DEFAULTS: Final[dict[Notice, dict[str, Any]]] = {
    "amazon_unlinked": {"by_support": False},
    "email_changed": {"confirmed": False},
    "new_device": {"how": None},
}
_REQUIRED: Final[dict[Notice, frozenset[str]]] = {"email_changed": frozenset({"new_email"})}
_HOW: Final = {
    "password": "with the account's password",
    "amazon": "with Amazon",
    "device": "with a code approved on a signed-in phone or computer",
}
# What each notice was about, as the "This wasn't me" page names it.
SUMMARIES: Final[dict[str, str]] = {
    "amazon_linked": "an Amazon account was linked",
    "amazon_unlinked": "Amazon was unlinked",
    "new_device": "a new browser or device signed in",
    "password_changed": "the password was changed",
    "password_reset": "the password was reset",
    "email_changed": "the e-mail address was changed",
}
DEVICE_NAME_SHOWN: Final = 40
UNKNOWN_CLIENT: Final = "an unrecognised browser or app"


def recipient(account: Account, notice: Notice, to: str | None = None) -> str | None:
    """Where ``notice`` goes for ``account`` (``to`` if given), or None: no address, or
    a new-device notice for an address never verified."""
    if to is not None:
        return to or None
    if not account.email:
        return None
    if notice in _VERIFIED_ONLY and not account.email_verified:
        return None
    return account.email


def describe_client(kind: SessionKind, device_name: str | None, user_agent: str | None) -> str:
    """A browser or device in a person's words: "Firefox on Linux", 'a device named
    "Living room" (Android)'."""
    described = user_agents.describe(user_agent)
    if kind == "device":
        name = " ".join((device_name or "").split())[:DEVICE_NAME_SHOWN]
        said = f'a device named "{name}"' if name else "a device"
        return f"{said} ({described})" if described else said
    return described or UNKNOWN_CLIENT


def describe_session(session: Session) -> str:
    return describe_client(session.kind, session.device_name, session.user_agent)


def how_signed_in(method: str) -> str | None:
    """The sign-in method in words (None for one a notice does not name)."""
    return _HOW.get(method)


async def notify(
    tx: Tx, account: Account, notice: Notice, *, to: str | None = None, **values: Any
) -> None:
    """Queue ``notice`` for ``account`` in this transaction (nothing when ``recipient``
    is None). ``values`` go to the templates: ``email_changed`` needs ``new_email`` (shown
    masked) and takes ``confirmed``; ``amazon_unlinked`` takes ``by_support``;
    ``new_device`` takes ``device`` and ``how``. By default ``device`` describes the
    browser or app of the request (``tx.client``)."""
    if notice not in NOTICES:
        raise ValueError(f"unknown notice {notice!r}")
    missing = _REQUIRED.get(notice, frozenset()) - values.keys()
    if missing:
        raise TypeError(f"notice {notice!r} needs {', '.join(sorted(missing))}")
    address = recipient(account, notice, to)
    if address is None:
        return
    now = tx.now()
    public = tx.settings.public_url.rstrip("/")
    link = not_me.token(tx.settings, account_id=account.id, notice=notice, now=now)
    context: dict[str, Any] = {
        "username": account.username,
        "when": now.astimezone(UTC).strftime("%d %B %Y at %H:%M UTC"),
        "device": describe_client("browser", None, tx.client.user_agent),
        "not_me_url": f"{public}/not-me?token={link}",
        "forgot_url": f"{public}/forgot",
        "account_url": f"{public}/account",
        **_DEFAULTS.get(notice, {}),
        **values,
    }
    if notice == "email_changed":
        context["new_email"] = mask_email(str(values["new_email"]))
    # Imported here: importing a flow loads no template engine (tests/flows/test_layering.py).
    from lwa_accounts.mail.render import render_mail

    mail = render_mail(
        f"notice_{notice}", to=address, settings=tx.settings, account_id=account.id, **context
    )
    await tx.send_mail(mail)
