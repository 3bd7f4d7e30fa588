"""Housekeeping drops outbox rows sent or failed longer ago than their retentions, in
batches, and never a message still to send (`purge` and `lwa-accounts db prune`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lwa_accounts.clock import FixedClock
from lwa_accounts.flows.housekeeping import purge
from lwa_accounts.store import outbox_queue
from lwa_accounts.store.db import Database
from tests.config.production_env import clean_env
from tests.mail.conftest import START, context, mail_settings, queue, rows
from tests.processes import run_cli

DAY = timedelta(days=1)


async def _settle(db: Database, clock: FixedClock, to: str, outcome: str) -> None:
    """Record ``outcome`` for the message to ``to`` at the clock's time."""
    now = clock.now()
    async with db.write() as conn:
        claimed = await outbox_queue.claim_due(conn, now=now, until=now + DAY, limit=100)
        for mail in claimed:
            if mail.to != to:
                assert await outbox_queue.release(conn, mail)
            elif outcome == "sent":
                assert await outbox_queue.mark_sent(conn, mail, now=now)
            elif outcome == "failed":
                assert await outbox_queue.give_up(conn, mail, now=now, error="550 refused")
            else:
                assert await outbox_queue.retry_later(conn, mail, at=now + DAY, error="451")


async def _fill(db: Database, clock: FixedClock, tmp_path: Path) -> None:
    """Sent 40 and 3 days ago, failed 40 and 3 days ago, waiting since 40 days, retrying."""
    ctx = context(db, mail_settings(tmp_path, None), clock)
    for n, outcome in enumerate(("sent", "failed", "waiting", "sent", "failed", "retrying")):
        to = f"{outcome}{n}@example.com"
        await queue(ctx, to)
        if outcome == "waiting":
            clock.advance((37 * DAY).total_seconds())
        else:
            await _settle(db, clock, to, outcome)


async def test_purge_drops_old_settled_mail_and_never_mail_still_to_send(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    await _fill(db, clock, tmp_path)
    now = START + 40 * DAY
    clock.advance((now - clock.now()).total_seconds())
    async with db.transaction() as stores:
        counts = await purge(
            stores,
            now,
            timedelta(days=7),
            1,
            mail_sent_retention=timedelta(days=7),
            mail_failed_retention=timedelta(days=30),
        )
    assert counts["mail"] == 1  # the batch limit holds for mail too
    async with db.transaction() as stores:
        counts = await purge(stores, now, timedelta(days=7), 100)  # defaults: 7 and 30 days
    assert counts["mail"] == 1
    left = {row["to_address"]: row for row in await rows(db)}
    assert set(left) == {
        "waiting2@example.com",  # 40 days old, never sent: kept
        "sent3@example.com",  # sent 3 days ago: within 7 days
        "failed4@example.com",  # failed 3 days ago: within 30 days
        "retrying5@example.com",
    }
    assert left["waiting2@example.com"]["sent_at"] is None
    assert left["sent3@example.com"]["sent_at"] == START + 37 * DAY
    assert left["failed4@example.com"]["failed_at"] == START + 37 * DAY
    async with db.transaction() as stores:
        assert (await purge(stores, now, timedelta(days=7), 100))["mail"] == 0


async def test_db_prune_reads_the_retentions_from_the_settings(
    database_url: str, tmp_path: Path, on_sqlite: None
) -> None:
    clock = FixedClock(START)
    db = Database(database_url, settings=mail_settings(tmp_path, None), clock=clock)
    await db.upgrade()
    try:
        await _fill(db, clock, tmp_path)  # START .. START + 37 days; the command runs later
    finally:
        await db.dispose()
    env = clean_env(
        tmp_path,
        ENV="development",
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
        SECRET_KEY="test-secret-key-0123456789abcdef",
    )
    keep_all = run_cli(
        "db",
        "prune",
        env={
            **env,
            "LWA_ACCOUNTS_MAIL_SENT_RETENTION_DAYS": "3650",
            "LWA_ACCOUNTS_MAIL_FAILED_RETENTION_DAYS": "3650",
        },
    )
    assert keep_all.returncode == 0, keep_all.stderr
    assert "mail: 0 deleted" in keep_all.stdout
    result = run_cli("db", "prune", "--batch", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert "mail: 4 deleted" in result.stdout  # every settled row is older than the defaults
    db = Database(database_url, settings=mail_settings(tmp_path, None), clock=clock)
    try:
        left = sorted(row["to_address"] for row in await rows(db))
    finally:
        await db.dispose()
    assert left == ["retrying5@example.com", "waiting2@example.com"]
