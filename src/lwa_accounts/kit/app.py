"""The service with the kit plugged in: ``web.app.create_app`` over a foreign users table."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import Connection

from lwa_accounts.interfaces import Clock, PasswordHasher
from lwa_accounts.kit import migrate
from lwa_accounts.kit.database import KitDatabase
from lwa_accounts.kit.hashers import DEFAULT_FORMATS, HashFormat, LegacyAwareHasher
from lwa_accounts.kit.mapping import UsersTableMapping
from lwa_accounts.settings import Settings
from lwa_accounts.web.app import create_app


class KitMisconfigured(RuntimeError):
    """The database does not fit the kit (raised at start-up, never during a request)."""


def create_kit_app(
    settings: Settings,
    *,
    mapping: UsersTableMapping,
    formats: Sequence[HashFormat] = DEFAULT_FORMATS,
    upgrade_hashes: bool = True,
    clock: Clock | None = None,
    amazon_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The whole service (pages, JSON API, Amazon flows) over the company's users table.

    At start-up (after the migration ``create_app`` runs in development and test) it
    checks that the mapped columns exist and that no foreign key to our ``accounts``
    table is left; every flow hashes with ``LegacyAwareHasher``.
    """
    database = KitDatabase(
        settings.effective_database_url, settings=settings, mapping=mapping, clock=clock
    )
    hasher: PasswordHasher = LegacyAwareHasher(settings, formats, upgrade=upgrade_hashes)

    async def check() -> None:
        await check_database(database)

    return create_app(
        settings,
        database=database,
        clock=clock,
        amazon_transport=amazon_transport,
        hasher=hasher,
        check_database=check,
        dispose_database=True,  # the kit made this database, so the app closes it
    )


async def check_database(database: KitDatabase) -> None:
    """Raise KitMisconfigured unless the database fits the kit (run at start-up)."""
    left = await migrate.remaining_account_keys(database.url)
    if left:
        raise KitMisconfigured(
            f"foreign keys to our accounts table remain ({left}): "
            "run `python -m lwa_accounts.kit upgrade` first"
        )
    mapping = database.mapping
    async with database.engine.connect() as connection:

        def missing(sync: Connection) -> list[str]:
            return mapping.missing_columns(sync)

        absent = await connection.run_sync(missing)
    if absent:
        raise KitMisconfigured(f"table {mapping.table!r} lacks the mapped columns {absent}")
