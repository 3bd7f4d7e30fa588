"""Shared by the recovery tests: verified accounts, the reset mail, its link's token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from lwa_accounts.core.models import Account
from lwa_accounts.flows.context import Context
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import QueuedMail, link_in, queued_mail


async def verify_email(ctx: Context, account: Account) -> Account:
    """Mark the account's address verified (what the verification flow ends with)."""
    async with ctx.transaction() as tx:
        return await tx.accounts.update(account.id, email_verified=True)


async def reset_mails(database: Database, to: str) -> list[QueuedMail]:
    return [mail for mail in await queued_mail(database, to) if mail.kind == "reset_password"]


async def last_reset_mail(database: Database, to: str) -> QueuedMail:
    mails = await reset_mails(database, to)
    assert mails, f"no reset mail for {to}"
    return mails[-1]


def token_in(mail: QueuedMail) -> str:
    """The token of the message's reset link, as the browser sends it."""
    url = link_in(mail, "/reset-password?token=")
    return parse_qs(urlsplit(url).query)["token"][0]


def reset_path_in(mail: QueuedMail) -> str:
    """The link's path and query, for a test client on the public URL."""
    parts = urlsplit(link_in(mail, "/reset-password?token="))
    return f"{parts.path}?{parts.query}"
