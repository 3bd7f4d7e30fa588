"""The delivery worker in the app: a commit that queued mail wakes it (no waiting for the
poll), a commit never waits on the SMTP server, and shutdown stops it cleanly, even with
a server that never answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from asgi_lifespan import LifespanManager

from lwa_accounts.clock import FixedClock
from lwa_accounts.flows.context import Context
from lwa_accounts.mail.worker import DeliveryWorker
from lwa_accounts.store.db import Database
from lwa_accounts.web.app import create_app
from lwa_accounts.web.services import Services
from tests.mail.conftest import context, delivery, mail_settings, queue, rows
from tests.mail.smtp_server import MailServer


async def eventually(condition: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def arrived(smtp: MailServer, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(smtp.arrivals) == count

    return check


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word (an SMTP server that hangs)."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_a_commit_wakes_the_worker_and_the_app_stops_it(
    smtp: MailServer, tmp_path: Path
) -> None:
    # A poll of five minutes: only the wake-up can deliver within the test.
    settings = mail_settings(tmp_path, smtp.url(), mail_poll_seconds=300)
    app = create_app(settings)
    async with LifespanManager(app):
        services: Services = app.state.services
        ctx = Context(deps=services.deps, database=services.database)
        await queue(ctx, "ada@example.com")
        await eventually(arrived(smtp, 1))
        await queue(ctx, "grace@example.com")
        await eventually(arrived(smtp, 2))
        started = time.monotonic()
    assert time.monotonic() - started < 3  # the idle worker stops at once
    assert [a.recipients for a in smtp.arrivals] == [["ada@example.com"], ["grace@example.com"]]
    assert services.database.on_mail_committed is None


async def test_a_hanging_server_holds_up_neither_a_commit_nor_shutdown(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    async with silent_server() as port:
        settings = mail_settings(tmp_path, f"smtp://127.0.0.1:{port}", mail_poll_seconds=300)
        worker = DeliveryWorker(delivery(db, settings, clock), poll_seconds=300)
        db.on_mail_committed = worker.wake
        worker.start()
        ctx = context(db, settings, clock)
        started = time.monotonic()
        await queue(ctx, "ada@example.com")
        assert time.monotonic() - started < 1  # committed; the worker is now stuck connecting
        await eventually(lambda: _claimed(db))
        started = time.monotonic()
        await worker.stop(grace_seconds=0.5)
        assert time.monotonic() - started < 2
    (row,) = await rows(db)
    # Cancelled mid-greeting: not attempted, so released, due again for the next worker.
    assert row["sent_at"] is None
    assert row["claimed_until"] is None
    assert row["attempts"] == 0


async def _claimed(db: Database) -> bool:
    return all(row["claimed_until"] is not None for row in await rows(db))
