"""Two delivery workers in two real processes (as `serve --workers 2` runs them) over one
outbox: every message arrives exactly once (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sys
from asyncio.subprocess import PIPE
from collections import Counter
from pathlib import Path

from lwa_accounts.clock import SystemClock
from lwa_accounts.store.db import Database
from tests.mail.conftest import context, mail_settings, queue, rows
from tests.mail.smtp_server import MailServer

MESSAGES = 60
ROOT = Path(__file__).resolve().parents[2]


async def test_two_processes_deliver_each_message_exactly_once(
    database_url: str, smtp: MailServer, tmp_path: Path
) -> None:
    settings = mail_settings(tmp_path, smtp.url(), database_url=database_url)
    db = Database(database_url, settings=settings, clock=SystemClock())
    await db.upgrade()
    try:
        ctx = context(db, settings, SystemClock())  # type: ignore[arg-type]
        for n in range(MESSAGES):
            await queue(ctx, f"user{n}@example.com")
        command = ["-m", "tests.mail.drain", database_url, smtp.url(), str(tmp_path)]
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable, *command, cwd=ROOT, stdin=PIPE, stdout=PIPE
            )
            for _ in range(2)
        ]
        for worker in workers:  # both connected before either starts
            assert worker.stdout is not None
            assert await asyncio.wait_for(worker.stdout.readline(), 60) == b"ready\n"
        outputs = await asyncio.wait_for(
            asyncio.gather(*(worker.communicate(b"go\n") for worker in workers)), 120
        )
        assert [worker.returncode for worker in workers] == [0, 0]
        claimed = [int(out.strip()) for out, _ in outputs]
        sent = [row for row in await rows(db) if row["sent_at"] is not None]
    finally:
        await db.dispose()
    arrived = Counter(arrival.recipients[0] for arrival in smtp.arrivals)
    assert arrived == Counter({f"user{n}@example.com": 1 for n in range(MESSAGES)})
    assert sum(claimed) == MESSAGES
    assert min(claimed) > 0, claimed  # both really took rows
    assert len(sent) == MESSAGES
