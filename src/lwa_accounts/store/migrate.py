"""Alembic, driven from code: upgrade, downgrade, current and head revisions.

These functions block (Alembic is synchronous); call them from a worker thread inside an
event loop (``Database.upgrade`` does).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from lwa_accounts.store.engine import create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Alembic keeps its running context in module globals: one migration per process at a time.
# (Across processes, env.py serialises with a PostgreSQL advisory lock / SQLite write lock.)
_alembic_lock = threading.Lock()


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations; ``url`` overrides the settings."""
    config = Config()
    # "%" is configparser interpolation syntax.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        # Passed as an attribute, not an option: configparser would mangle "%" in passwords.
        config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    with _alembic_lock:
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    with _alembic_lock:
        command.downgrade(alembic_config(url), revision)


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(url: str) -> str | None:
    """The revision the database is at (None for an empty database)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async def run() -> str | None:
        engine = create_engine(url, null_pool=True)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())
