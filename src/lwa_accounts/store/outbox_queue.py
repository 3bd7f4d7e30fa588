"""The delivery worker's side of the outbox: claim due rows by lease, record each outcome.

A row is *due* when it is neither sent nor failed, its ``next_attempt_at`` has come and no
live lease holds it (``claimed_until`` unset or past). ``claim_due`` sets the lease on a
batch of due rows in one transaction: on PostgreSQL the rows are picked ``FOR UPDATE SKIP
LOCKED`` (a second worker skips them instead of waiting), on SQLite the write lock every
write transaction takes first (``BEGIN IMMEDIATE``) makes it a compare-and-set; the
update checks again that each row is still due.
Either way two workers, in one process or several, never hold one row at once.

The lease's end carries random microseconds and is the claim's token: every outcome
(``mark_sent``, ``retry_later``, ``give_up``, ``release``) is written only where
``claimed_until`` still equals it, so a worker whose lease ran out (and whose row another
worker took) changes nothing. A sent or failed row's body is emptied: no one-time link is
kept at rest longer than it takes to send it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.store.schema import outbox

_c = outbox.c


@dataclass(frozen=True)
class ClaimedMail:
    id: int
    kind: str
    to: str
    subject: str
    sealed_body: str | None
    attempts: int  # attempts made before this one
    lease: datetime  # the claim's token (see the module's docstring)


def _unsettled() -> ColumnElement[bool]:
    return and_(_c.sent_at.is_(None), _c.failed_at.is_(None))


def lease_until(now: datetime, lease: timedelta) -> datetime:
    return now + lease + timedelta(microseconds=secrets.randbelow(1_000_000))


async def claim_due(
    conn: AsyncConnection, *, now: datetime, until: datetime, limit: int
) -> list[ClaimedMail]:
    """Lease at most ``limit`` due rows (oldest due first) until ``until``."""
    free = or_(_c.claimed_until.is_(None), _c.claimed_until <= now)
    due = and_(_unsettled(), _c.next_attempt_at <= now, free)
    # Two statements, not UPDATE ... WHERE id IN (SELECT ... LIMIT): PostgreSQL may rescan
    # such a subquery and update more rows than the limit (a test caught it). SKIP LOCKED on
    # PostgreSQL; SQLite's compiler leaves FOR UPDATE out (its write lock is held already).
    picked = (
        select(_c.id)
        .where(due)
        .order_by(_c.next_attempt_at, _c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.execute(picked)).scalars())
    if not ids:
        return []
    claim = (
        update(outbox)
        .where(_c.id.in_(ids), due)
        .values(claimed_until=until)
        .returning(_c.id, _c.kind, _c.to_address, _c.subject, _c.sealed_body, _c.attempts)
    )
    rows = (await conn.execute(claim)).all()
    claimed = [
        ClaimedMail(r.id, r.kind, r.to_address, r.subject, r.sealed_body, r.attempts, until)
        for r in rows
    ]
    return sorted(claimed, key=lambda mail: mail.id)


def _held(mail: ClaimedMail) -> ColumnElement[bool]:
    return and_(_c.id == mail.id, _c.claimed_until == mail.lease, _unsettled())


async def _settle(conn: AsyncConnection, mail: ClaimedMail, **values: object) -> bool:
    result = await conn.execute(update(outbox).where(_held(mail)).values(**values))
    return int(result.rowcount) == 1


async def mark_sent(conn: AsyncConnection, mail: ClaimedMail, *, now: datetime) -> bool:
    """Sent: the body emptied, the lease dropped. False: the lease was lost meanwhile."""
    return await _settle(
        conn,
        mail,
        sent_at=now,
        sealed_body=None,
        claimed_until=None,
        attempts=mail.attempts + 1,
        last_error=None,
    )


async def retry_later(
    conn: AsyncConnection, mail: ClaimedMail, *, at: datetime, error: str
) -> bool:
    return await _settle(
        conn,
        mail,
        next_attempt_at=at,
        claimed_until=None,
        attempts=mail.attempts + 1,
        last_error=error[:500],
    )


async def give_up(conn: AsyncConnection, mail: ClaimedMail, *, now: datetime, error: str) -> bool:
    """Failed for good (a permanent refusal, or the last attempt): the body emptied too."""
    return await _settle(
        conn,
        mail,
        failed_at=now,
        sealed_body=None,
        claimed_until=None,
        attempts=mail.attempts + 1,
        last_error=error[:500],
    )


async def release(conn: AsyncConnection, mail: ClaimedMail) -> bool:
    """Not attempted (the batch ran out of time, or the worker is stopping): due again."""
    return await _settle(conn, mail, claimed_until=None)


async def count_unsettled(conn: AsyncConnection) -> int:
    """Messages neither sent nor failed (waiting, or being sent)."""
    stmt = select(func.count()).select_from(outbox).where(_unsettled())
    return int((await conn.execute(stmt)).scalar_one())


async def purge_settled(
    conn: AsyncConnection, *, sent_before: datetime, failed_before: datetime, limit: int
) -> int:
    """Delete at most ``limit`` rows sent before ``sent_before`` or failed before
    ``failed_before``. Unsettled mail is never deleted here."""
    old = or_(_c.sent_at < sent_before, _c.failed_at < failed_before)
    ids = select(_c.id).where(old).order_by(_c.id).limit(limit)
    result = await conn.execute(delete(outbox).where(_c.id.in_(ids.scalar_subquery())))
    return int(result.rowcount)
