"""``python -m lwa_accounts.kit upgrade``: migrate a kit deployment's database.

Runs the product's migrations, then drops our foreign keys to our own ``accounts`` table
(the accounts live in the company's table). Idempotent; the URL comes from the settings
(``LWA_ACCOUNTS_DATABASE_URL``) unless given. ``kit/__main__.py`` only calls ``main``:
argument parsing lives under ``cli/``.
"""

from __future__ import annotations

import argparse
import asyncio

from lwa_accounts.kit import migrate
from lwa_accounts.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lwa_accounts.kit")
    commands = parser.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser("upgrade", help="migrate, then detach from our accounts table")
    upgrade.add_argument("--database-url", help="default: the settings' database URL")
    args = parser.parse_args(argv)
    url = args.database_url or load_settings().effective_database_url
    changed = asyncio.run(migrate.upgrade(url))
    print("detached: " + (", ".join(changed) if changed else "nothing left to detach"))
    return 0
