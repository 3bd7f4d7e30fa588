"""``lwa-accounts db upgrade``, ``db current`` and ``db prune``.

With the other commands, not in ``store/``: ``prune`` drives a flow (``flows.housekeeping``)
and ``store/`` imports no flow.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from typing import Any

from lwa_accounts.flows import housekeeping
from lwa_accounts.settings import Settings, load_settings
from lwa_accounts.store import migrate
from lwa_accounts.store.db import Database

GRACE_DAYS_MAX = 3650
BATCH_MAX = 100_000


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    db = subparsers.add_parser("db", help="Database migrations.")
    commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = commands.add_parser("upgrade", help="Migrate the database to the latest revision.")
    upgrade.set_defaults(handler=_upgrade)
    current = commands.add_parser("current", help="Show the database's revision and the latest.")
    current.set_defaults(handler=_current)
    prune = commands.add_parser(
        "prune",
        help="Delete sessions, pending flows and device codes expired or revoked long ago, "
        "and mail sent or failed longer ago than LWA_ACCOUNTS_MAIL_*_RETENTION_DAYS.",
    )
    prune.add_argument(
        "--grace-days",
        type=_bounded("--grace-days", 0, GRACE_DAYS_MAX),
        default=7,
        help="Keep rows this many days after they expire or are revoked (default 7).",
    )
    prune.add_argument(
        "--batch",
        type=_bounded("--batch", 1, BATCH_MAX),
        default=1000,
        help="Rows of each kind deleted per transaction (default 1000).",
    )
    prune.set_defaults(handler=_prune)


def _bounded(option: str, low: int, high: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} takes a whole number") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{option} must be between {low} and {high}")
        return number

    return parse


def _upgrade(_args: argparse.Namespace) -> int:
    url = load_settings().effective_database_url
    migrate.upgrade(url)
    print(f"Database upgraded to {migrate.current(url)}.")
    return 0


def _current(_args: argparse.Namespace) -> int:
    url = load_settings().effective_database_url
    current, head = migrate.current(url), migrate.head()
    print(f"current: {current or '(empty database)'}")
    print(f"head:    {head}")
    if current != head:
        print("Run `lwa-accounts db upgrade` to migrate.")
    return 0


async def prune(settings: Settings, *, grace: timedelta, batch: int) -> dict[str, int]:
    """Purge in batches, one short transaction each (writers are never blocked long),
    until a batch finds fewer than ``batch`` rows of every kind. Returns the totals."""
    database = Database.from_settings(settings)
    totals = dict.fromkeys(housekeeping.KINDS, 0)
    try:
        if settings.is_development:
            await database.upgrade()
        while True:
            async with database.transaction() as stores:
                counts = await housekeeping.purge(
                    stores,
                    database.clock.now(),
                    grace,
                    batch,
                    mail_sent_retention=timedelta(days=settings.mail_sent_retention_days),
                    mail_failed_retention=timedelta(days=settings.mail_failed_retention_days),
                )
            for kind, count in counts.items():
                totals[kind] += count
            if all(count < batch for count in counts.values()):
                return totals
    finally:
        await database.dispose()


def _prune(args: argparse.Namespace) -> int:
    totals = asyncio.run(
        prune(load_settings(), grace=timedelta(days=args.grace_days), batch=args.batch)
    )
    for kind, count in totals.items():
        print(f"{kind}: {count} deleted")
    return 0
