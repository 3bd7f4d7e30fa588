"""``lwa-accounts db upgrade`` and ``lwa-accounts db current``."""

from __future__ import annotations

import argparse
from typing import Any

from lwa_accounts.settings import load_settings
from lwa_accounts.store import migrate


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    db = subparsers.add_parser("db", help="Database migrations.")
    commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = commands.add_parser("upgrade", help="Migrate the database to the latest revision.")
    upgrade.set_defaults(handler=_upgrade)
    current = commands.add_parser("current", help="Show the database's revision and the latest.")
    current.set_defaults(handler=_current)


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
