"""``lwa-accounts accounts create|list``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from lwa_accounts.clock import SystemClock
from lwa_accounts.errors import LwaAccountsError, ValidationFailed
from lwa_accounts.flows.accounts import register as register_account
from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.passwords import Argon2Hasher, common_passwords
from lwa_accounts.settings import Settings, load_settings
from lwa_accounts.store.db import Database
from lwa_accounts.throttle import Throttle


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    accounts = subparsers.add_parser("accounts", help="manage accounts")
    commands = accounts.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    create = commands.add_parser("create", help="create a password account")
    create.add_argument("username")
    create.add_argument("--email", default=None)
    create.add_argument("--name", required=True)
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (for scripts)",
    )
    create.set_defaults(handler=_create)
    listing = commands.add_parser("list", help="list accounts")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(handler=_list)


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        print("error: the passwords do not match", file=sys.stderr)
        return None
    return first


def _create(args: argparse.Namespace) -> int:
    password = _read_password(args.password_stdin)
    if password is None:
        return 1
    try:
        account_id = asyncio.run(
            _create_async(load_settings(), args.username, args.email, args.name, password)
        )
    except ValidationFailed as error:
        for field, message in error.errors.items():
            print(f"error: {field}: {message}", file=sys.stderr)
        return 1
    except LwaAccountsError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 1
    print(account_id)
    return 0


async def _create_async(
    settings: Settings, username: str, email: str | None, name: str, password: str
) -> str:
    database = Database.from_settings(settings, clock=SystemClock())
    throttle = Throttle(settings)
    try:
        if settings.is_development:
            await database.upgrade()
        hasher = Argon2Hasher(settings)
        deps = Deps(
            settings=settings,
            hasher=hasher,
            throttle=throttle,
            clock=database.clock,
            common_passwords=common_passwords(),
        )
        ctx = Context(deps, database, ClientInfo(ip=None, user_agent="lwa-accounts cli"))
        async with ctx.transaction() as tx:
            account = await register_account(
                tx, username=username, email=email, name=name, password=password
            )
        return account.id
    finally:
        await throttle.aclose()
        await database.dispose()


def _list(args: argparse.Namespace) -> int:
    rows = asyncio.run(_list_async(load_settings(), args.limit, args.offset))
    for row in rows:
        print("\t".join(row))
    return 0


async def _list_async(settings: Settings, limit: int, offset: int) -> list[list[str]]:
    database = Database.from_settings(settings)
    try:
        if settings.is_development:
            await database.upgrade()
        async with database.transaction() as stores:
            accounts = await stores.accounts.list(limit=limit, offset=offset)
    finally:
        await database.dispose()
    header = ["id", "username", "email", "name", "created_at", "password", "disabled"]
    return [header] + [
        [
            a.id,
            a.username,
            a.email or "-",
            a.name,
            a.created_at.isoformat(timespec="seconds"),
            "yes" if a.has_password else "no",
            "yes" if a.disabled else "no",
        ]
        for a in accounts
    ]
