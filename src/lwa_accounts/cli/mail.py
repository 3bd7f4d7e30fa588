"""``lwa-accounts mail test --to ADDRESS``: is outgoing mail configured right?

Renders the ``test`` message and sends it at once over ``LWA_ACCOUNTS_SMTP_URL``, past
the outbox (nothing is queued, nothing retried), then prints the server's answer or its
refusal: exit 0 when the server accepted the message, 1 otherwise (2: a bad address).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from lwa_accounts.core.validation import Valid, normalise_email
from lwa_accounts.mail.message import build_message
from lwa_accounts.mail.render import render_mail
from lwa_accounts.mail.smtp import SendFailed, smtp_session
from lwa_accounts.settings import Settings, load_settings


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    mail = subparsers.add_parser("mail", help="Outgoing mail.")
    commands = mail.add_subparsers(dest="mail_command", required=True, metavar="MAIL_COMMAND")
    test = commands.add_parser(
        "test", help="Send the test message now through LWA_ACCOUNTS_SMTP_URL."
    )
    test.add_argument("--to", required=True, type=_address, help="Where to send it.")
    test.set_defaults(handler=_test)


def _address(value: str) -> str:
    checked = normalise_email(value)
    if not isinstance(checked, Valid):
        raise argparse.ArgumentTypeError(checked.message)
    return checked.value


async def send_test(settings: Settings, to: str) -> str:
    """The server's answer to the test message; ``SendFailed`` with its refusal."""
    target = settings.smtp
    assert target is not None
    mail = render_mail("test", to=to, settings=settings)
    envelope = build_message(
        mail_from=settings.effective_mail_from,
        to=mail.to,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        kind=mail.kind,
        now=datetime.now(UTC),
    )
    async with smtp_session(
        target,
        command_timeout=settings.mail_smtp_timeout_seconds,
        local_hostname=urlsplit(settings.public_url).hostname or "localhost",
    ) as session:
        return await session.send(envelope)


def _test(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.smtp is None:
        print(
            "error: LWA_ACCOUNTS_SMTP_URL is not set, so nothing can be sent (outside "
            "production every message stays in the outbox, shown at /_dev/mail)",
            file=sys.stderr,
        )
        return 1
    where = settings.smtp.where
    try:
        answer = asyncio.run(send_test(settings, args.to))
    except SendFailed as failed:
        print(f"error: {where}: {failed.reason}", file=sys.stderr)
        return 1
    print(f"sent: the test message to {args.to} from {settings.effective_mail_from} via {where}")
    print(f"server: {answer}")
    return 0
