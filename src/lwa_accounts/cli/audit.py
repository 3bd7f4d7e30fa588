"""``lwa-accounts audit [--account ID] [--since ISO] [--kind PREFIX] [--limit N]``.

Prints audit events (Amazon sign-ins, links, unlinks, refused attempts, sessions...),
oldest first, one per line, tab-separated: time, kind, account, Amazon user, client id,
IP, detail. Events never hold a token or a password, so neither does this output.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lwa_accounts.core.models import AuditEvent
from lwa_accounts.settings import Settings, load_settings
from lwa_accounts.store.db import Database

LIMIT_MAX = 1000
COLUMNS = ("at", "kind", "account", "amazon_user", "client_id", "ip", "detail")


def iso_time(value: str) -> datetime:
    """An ISO 8601 time argument, in UTC (also `admin export-audit`'s --since/--until)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {value!r} (e.g. 2026-11-24T18:00:00Z)"
        ) from None
    # A time without a zone means UTC, like every time the service records.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= number <= LIMIT_MAX:
        raise argparse.ArgumentTypeError(f"use 1 to {LIMIT_MAX}")
    return number


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    audit = subparsers.add_parser(
        "audit", help="Print audit events (sign-ins, links, unlinks, refused attempts)."
    )
    audit.add_argument("--account", metavar="ID", help="Only events of this account id.")
    audit.add_argument(
        "--since", metavar="ISO", type=iso_time, help="Only events at or after this time (UTC)."
    )
    audit.add_argument(
        "--kind",
        metavar="PREFIX",
        default="",
        help="Only kinds starting with this, e.g. 'amazon.' (among the newest 1000 events).",
    )
    audit.add_argument(
        "--limit", type=_limit, default=100, help=f"The newest N events (max {LIMIT_MAX})."
    )
    audit.set_defaults(handler=_run)


def format_event(event: AuditEvent) -> str:
    values = (
        event.at.isoformat(timespec="seconds"),
        event.kind,
        event.account_id,
        event.amazon_user_id,
        event.client_id,
        event.ip,
        event.detail,
    )
    # Tabs and newlines inside a value would break the columns: show them escaped.
    return "\t".join((value or "-").replace("\t", "\\t").replace("\n", "\\n") for value in values)


async def fetch(
    settings: Settings,
    *,
    account_id: str | None,
    since: datetime | None,
    kind: str,
    limit: int,
) -> Sequence[AuditEvent]:
    database = Database.from_settings(settings)
    try:
        if settings.is_development:
            await database.upgrade()
        async with database.transaction() as stores:
            events = await stores.audit.list(account_id=account_id, since=since, limit=LIMIT_MAX)
    finally:
        await database.dispose()
    matching = [event for event in events if event.kind.startswith(kind)][:limit]
    return list(reversed(matching))


def _run(args: argparse.Namespace) -> int:
    events = asyncio.run(
        fetch(
            load_settings(),
            account_id=args.account,
            since=args.since,
            kind=args.kind,
            limit=args.limit,
        )
    )
    print("\t".join(COLUMNS))
    for event in events:
        print(format_event(event))
    return 0
