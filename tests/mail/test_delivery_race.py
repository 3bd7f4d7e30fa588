"""Two delivery workers over the same outbox never send one message twice (each with its
own Database and pool, as two `serve` workers have; PostgreSQL and SQLite), and a worker
whose lease ran out cannot record anything over the worker that took the row next."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

from lwa_accounts.clock import FixedClock
from lwa_accounts.store import outbox_queue
from lwa_accounts.store.db import Database
from lwa_accounts.testing import offline_settings
from tests.mail.conftest import START, context, delivery, mail_settings, queue, rows
from tests.mail.smtp_server import MailServer

MESSAGES = 40


async def _drain(worker_db: Database, settings: object, clock: FixedClock) -> int:
    worker = delivery(worker_db, settings, clock, batch_size=3)  # type: ignore[arg-type]
    claimed = 0
    while True:
        got = await worker.deliver_due()
        claimed += got
        if got == 0:
            return claimed
        await asyncio.sleep(0)


async def test_two_workers_racing_deliver_each_message_exactly_once(
    db: Database, database_url: str, smtp: MailServer, clock: FixedClock, tmp_path: Path
) -> None:
    settings = mail_settings(tmp_path, smtp.url())
    ctx = context(db, settings, clock)
    for n in range(MESSAGES):
        await queue(ctx, f"user{n}@example.com")
    # A second process's view of the same database: its own engine, pool and SQLite lock.
    other = Database(database_url, settings=offline_settings(tmp_path), clock=clock)
    try:
        claimed = await asyncio.gather(
            _drain(db, settings, clock),
            _drain(other, settings, clock),
            _drain(other, settings, clock),
        )
    finally:
        await other.dispose()

    arrived = Counter(arrival.recipients[0] for arrival in smtp.arrivals)
    assert arrived == Counter({f"user{n}@example.com": 1 for n in range(MESSAGES)})
    assert sum(claimed) == MESSAGES  # no row claimed twice either
    assert all(c > 0 for c in claimed[:2]), claimed  # they really raced over the rows
    assert all(row["sent_at"] is not None and row["attempts"] == 1 for row in await rows(db))


async def test_a_lost_lease_records_nothing_and_the_row_goes_to_the_next_claim(
    db: Database, smtp: MailServer, clock: FixedClock, tmp_path: Path
) -> None:
    settings = mail_settings(tmp_path, smtp.url())
    await queue(context(db, settings, clock), "ada@example.com")
    lease = timedelta(minutes=5)
    async with db.write() as conn:
        (slow,) = await outbox_queue.claim_due(
            conn, now=START, until=outbox_queue.lease_until(START, lease), limit=10
        )
    async with db.write() as conn:  # held: nobody else gets it
        assert await outbox_queue.claim_due(conn, now=START, until=START + lease, limit=10) == []
    clock.advance(6 * 60)  # the slow worker's lease ran out
    now = clock.now()
    async with db.write() as conn:
        (taken,) = await outbox_queue.claim_due(
            conn, now=now, until=outbox_queue.lease_until(now, lease), limit=10
        )
    assert taken.id == slow.id
    assert taken.lease != slow.lease
    async with db.write() as conn:
        assert not await outbox_queue.mark_sent(conn, slow, now=now)
        assert not await outbox_queue.retry_later(conn, slow, at=now, error="late")
        assert not await outbox_queue.give_up(conn, slow, now=now, error="late")
        assert not await outbox_queue.release(conn, slow)
    (row,) = await rows(db)
    assert (row["sent_at"], row["failed_at"], row["claimed_until"]) == (None, None, taken.lease)
    async with db.write() as conn:
        assert await outbox_queue.mark_sent(conn, taken, now=now)
        assert not await outbox_queue.mark_sent(conn, taken, now=now)  # once
