"""Reading the outbox in tests: the messages queued for an address, opened.

``queued_mail(database, to)`` answers every message queued for ``to`` (oldest first) with
its text and HTML opened, whether or not a delivery worker has sent it yet; ``link_in`` and
``code_in`` pull a message's one-time link (a path under the public URL) and six-digit code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from lwa_accounts.store.db import Database
from lwa_accounts.store.outbox import open_body
from lwa_accounts.store.schema import outbox


@dataclass(frozen=True)
class QueuedMail:
    id: int
    kind: str
    to: str
    subject: str
    text: str
    html: str


async def queued_mail(database: Database, to: str | None = None) -> list[QueuedMail]:
    """Messages in the outbox (for ``to``, or all), oldest first, bodies opened (a sent
    message's body is emptied: its text and HTML read as empty)."""
    stmt = select(outbox).order_by(outbox.c.id)
    if to is not None:
        stmt = stmt.where(outbox.c.to_address == to)
    async with database.engine.connect() as connection:
        rows = (await connection.execute(stmt)).all()
    found = []
    for row in rows:
        text, html = ("", "")
        if row.sealed_body:
            text, html = open_body(database.sealer, row.kind, row.to_address, row.sealed_body)
        found.append(QueuedMail(row.id, row.kind, row.to_address, row.subject, text, html))
    return found


def link_in(mail: QueuedMail, path_prefix: str) -> str:
    """The first link in the text part whose path starts with ``path_prefix`` (the whole
    URL as written in the message)."""
    for url in re.findall(r"https?://\S+", mail.text):
        if path_prefix in url:
            return str(url).rstrip(".,)")
    raise AssertionError(f"no link to {path_prefix} in {mail.kind} mail: {mail.text!r}")


def code_in(mail: QueuedMail) -> str:
    """The six-digit code in the text part."""
    match = re.search(r"\b(\d{3}) ?(\d{3})\b", mail.text)
    if match is None:
        raise AssertionError(f"no code in {mail.kind} mail: {mail.text!r}")
    return match.group(1) + match.group(2)
