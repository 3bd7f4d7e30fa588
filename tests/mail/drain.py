"""``python -m tests.mail.drain DATABASE_URL SMTP_URL DATA_DIR``: one delivery worker in a
process of its own, delivering until nothing is due (tests/mail/test_delivery_processes.py
starts two at once)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lwa_accounts.clock import SystemClock
from lwa_accounts.mail.delivery import Delivery
from lwa_accounts.store.db import Database
from lwa_accounts.testing import offline_settings


async def drain(database_url: str, smtp_url: str, data_dir: Path) -> int:
    settings = offline_settings(
        data_dir, database_url=database_url, smtp_url=smtp_url, mail_from="no-reply@example.com"
    )
    database = Database.from_settings(settings, clock=SystemClock())
    delivery = Delivery(database, settings, clock=database.clock, batch_size=2)
    await database.ping()  # connected: now wait for the word, so both workers start together
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    claimed = 0
    try:
        while got := await delivery.deliver_due():
            claimed += got
    finally:
        await database.dispose()
    return claimed


if __name__ == "__main__":
    print(asyncio.run(drain(sys.argv[1], sys.argv[2], Path(sys.argv[3]))))
