"""Alembic environment: runs migrations over the project's async engine.

The URL comes from ``config.attributes["url"]`` (set by store/migrate.py), else from
``sqlalchemy.url`` in alembic.ini, else from the settings.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from lwa_accounts.settings import load_settings
from lwa_accounts.store.engine import create_engine
from lwa_accounts.store.schema import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    return str(url) if url else load_settings().effective_database_url


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=metadata,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    url = _url()
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


# Any constant: the key of the PostgreSQL advisory lock that serialises migrations.
MIGRATION_LOCK_KEY = 0x1A_CC_0A_75


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # SQLite cannot ALTER most things: batch mode rebuilds tables instead. Its DDL is
    # transactional, but Alembic assumes otherwise and would then commit after every
    # revision, letting a second process's BEGIN IMMEDIATE in between (both then ran the
    # same revision: "table ... already exists"); one transaction holds the lock throughout.
    _configure(connection=connection, render_as_batch=sqlite, transactional_ddl=sqlite or None)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two servers starting at once: the second waits, then finds nothing to do.
            # (SQLite: BEGIN IMMEDIATE for the whole upgrade serialises writers.)
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def run_online() -> None:
    engine = create_engine(_url(), null_pool=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
