"""The kit's schema step: the product's migrations, then our tables detached from our
``accounts`` table (see ``kit.schema``)."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection

from lwa_accounts.kit.schema import account_foreign_keys, detach_postgresql, detach_sqlite
from lwa_accounts.store import migrate
from lwa_accounts.store.engine import create_engine, is_sqlite


async def detach(url: str) -> list[str]:
    """Drop the foreign keys to ``accounts``; the tables changed (none the second time)."""
    if is_sqlite(url):
        return await asyncio.to_thread(detach_sqlite, url)
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(detach_postgresql)
    finally:
        await engine.dispose()


async def upgrade(url: str) -> list[str]:
    """``db upgrade`` for a kit deployment. Safe to run on every start and on every host."""
    await asyncio.to_thread(migrate.upgrade, url)
    return await detach(url)


async def remaining_account_keys(url: str) -> list[tuple[str, str]]:
    """Foreign keys to ``accounts`` still present (the app refuses to start with any)."""
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as connection:

            def read(sync: Connection) -> list[tuple[str, str]]:
                return account_foreign_keys(sync)

            return await connection.run_sync(read)
    finally:
        await engine.dispose()
