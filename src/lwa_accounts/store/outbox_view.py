"""Reading the outbox as a mailbox (the development page ``/_dev/mail``): newest first, each
row's state, and one message with its body opened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.sealing import SealBroken, Sealer
from lwa_accounts.store.outbox import open_body
from lwa_accounts.store.schema import outbox

Status = Literal["sent", "failed", "retrying", "waiting"]


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    kind: str
    to: str
    subject: str
    created_at: datetime
    status: Status
    attempts: int
    last_error: str | None
    has_body: bool


@dataclass(frozen=True)
class OpenedMail:
    entry: OutboxEntry
    text: str
    html: str
    readable: bool  # False: emptied after sending, or sealed under a key no longer held


def _entry(row: Row[tuple[object, ...]]) -> OutboxEntry:
    m = row._mapping
    status: Status = (
        "sent"
        if m["sent_at"] is not None
        else "failed"
        if m["failed_at"] is not None
        else "retrying"
        if m["attempts"]
        else "waiting"
    )
    return OutboxEntry(
        id=m["id"],
        kind=m["kind"],
        to=m["to_address"],
        subject=m["subject"],
        created_at=m["created_at"],
        status=status,
        attempts=m["attempts"],
        last_error=m["last_error"],
        has_body=bool(m["sealed_body"]),
    )


_LIST = select(outbox).order_by(outbox.c.id.desc()).limit(200)


async def recent(conn: AsyncConnection) -> list[OutboxEntry]:
    """The 200 newest messages, newest first."""
    return [_entry(row) for row in await conn.execute(_LIST)]


async def opened(conn: AsyncConnection, sealer: Sealer, mail_id: int) -> OpenedMail | None:
    row = (await conn.execute(select(outbox).where(outbox.c.id == mail_id))).first()
    if row is None:
        return None
    entry = _entry(row)
    sealed = row._mapping["sealed_body"]
    if not sealed:
        return OpenedMail(entry, "", "", readable=False)
    try:
        text, html = open_body(sealer, entry.kind, entry.to, sealed)
    except SealBroken:
        return OpenedMail(entry, "", "", readable=False)
    return OpenedMail(entry, text, html, readable=True)
