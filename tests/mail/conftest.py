"""Mail fixtures: a real SMTP server on loopback, a database (SQLite or PostgreSQL), a
fixed clock, and helpers that queue mail the way flows do (``tx.send_mail``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lwa_accounts.clock import FixedClock
from lwa_accounts.flows.context import Context, Deps
from lwa_accounts.mail.delivery import Delivery
from lwa_accounts.mail.render import render_mail
from lwa_accounts.mail.retry import RetryPolicy
from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import outbox
from lwa_accounts.testing import offline_settings
from lwa_accounts.throttle import Throttle
from tests.mail.smtp_server import MailServer

START = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
FROM = "Accounts <no-reply@accounts.example.com>"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[MailServer]:
    server = MailServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{(tmp_path / 'mail.db').as_posix()}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def mail_settings(tmp_path: Path, smtp_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_url": smtp_url,
        "mail_from": FROM,
        "mail_smtp_timeout_seconds": 5,
        "public_url": "http://accounts.test",
    }
    return offline_settings(tmp_path, **{**values, **overrides})


@pytest.fixture
async def db(database_url: str, tmp_path: Path, clock: FixedClock) -> AsyncIterator[Database]:
    database = Database(database_url, settings=offline_settings(tmp_path), clock=clock)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


def context(db: Database, settings: Settings, clock: FixedClock) -> Context:
    deps = Deps(
        settings=settings,
        hasher=Argon2Hasher(settings),
        throttle=Throttle(settings),
        clock=clock,
        common_passwords=frozenset(),
    )
    return Context(deps=deps, database=db)


async def queue(ctx: Context, to: str, kind: str = "test", **values: Any) -> None:
    """One message queued in a committed transaction, as a flow does it."""
    async with ctx.transaction() as tx:
        await tx.send_mail(render_mail(kind, to=to, settings=tx.settings, **values))


def delivery(db: Database, settings: Settings, clock: FixedClock, **kwargs: Any) -> Delivery:
    # Jitter pinned to its largest draw: the wait is exactly half the ceiling.
    policy = RetryPolicy.from_settings(settings)
    policy = RetryPolicy(policy.max_attempts, policy.base_seconds, policy.max_seconds, lambda: 1.0)
    return Delivery(db, settings, clock=clock, policy=policy, **kwargs)


async def rows(db: Database) -> list[dict[str, Any]]:
    async with db.engine.connect() as connection:
        result = await connection.execute(select(outbox).order_by(outbox.c.id))
        return [dict(row._mapping) for row in result]
