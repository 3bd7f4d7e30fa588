"""A fast bulk loader: N accounts, each with an Amazon link and a device session, written
straight into our schema (``lwa_accounts.store.schema``): PostgreSQL COPY, or one SQLite
transaction of ``executemany``. For measuring growth only: the rows are realistic in shape
(indexed columns filled, unique where the schema says so), not in content."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table

from lwa_accounts.store import schema

BATCH = 20_000
CLIENT_ID = "amzn1.application-oa2-client.devwebclient0000000000000000"


def rows(table: Table, start: int, stop: int, now: datetime) -> Iterator[dict[str, Any]]:
    later = now + timedelta(days=90)
    for i in range(start, stop):
        account_id = f"seed{i:012d}"
        if table is schema.accounts:
            yield {
                "id": account_id,
                "username": f"seed{i}",
                "email": f"seed{i}@seed.example.com",
                "email_normalized": f"seed{i}@seed.example.com",
                "name": f"Seed {i}",
                "password_hash": None,
                "email_verified": True,
                "disabled": False,
                "created_at": now,
                "updated_at": now,
            }
        elif table is schema.amazon_identities:
            yield {
                "amazon_user_id": f"amzn1.account.SEED{i:012d}",
                "account_id": account_id,
                "client_id": CLIENT_ID,
                "name": f"Seed {i}",
                "email": f"seed{i}@seed.example.com",
                "linked_at": now,
                "last_sign_in_at": now,
            }
        elif table is schema.sessions:
            yield {
                "id": f"sess{i:012d}",
                "token_hash": hashlib.sha256(f"seed-session-{i}".encode()).hexdigest(),
                "account_id": account_id,
                "kind": "device",
                "device_name": "seeded",
                "created_at": now,
                "last_seen_at": now,
                "authenticated_at": now,
                "idle_expires_at": later,
                "absolute_expires_at": later,
            }


TABLES = (schema.accounts, schema.amazon_identities, schema.sessions)


def _ordered(table: Table, row: dict[str, Any]) -> tuple[Any, ...]:
    missing = [c.name for c in table.columns if c.name not in row and not c.nullable]
    if missing:
        raise SystemExit(f"bench seed: {table.name} has new required columns {missing}")
    return tuple(row.get(c.name) for c in table.columns)


async def seed_postgres(connection: Any, start: int, stop: int) -> float:
    """COPY accounts, links and sessions ``start..stop`` in; seconds taken."""
    began = time.perf_counter()
    now = datetime.now(UTC)
    for table in TABLES:
        columns = [c.name for c in table.columns]
        for low in range(start, stop, BATCH):
            records = [_ordered(table, r) for r in rows(table, low, min(stop, low + BATCH), now)]
            await connection.copy_records_to_table(table.name, records=records, columns=columns)
    await connection.execute("ANALYZE accounts; ANALYZE amazon_identities; ANALYZE sessions")
    return time.perf_counter() - began


def seed_sqlite(path: Path, start: int, stop: int) -> float:
    """The same rows into a SQLite file, one transaction; seconds taken."""
    began = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None)  # stored as naive UTC, as UTCDateTime does
    connection = sqlite3.connect(path)
    try:
        with connection:
            for table in TABLES:
                columns = [c.name for c in table.columns]
                marks = ", ".join("?" * len(columns))
                sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
                for low in range(start, stop, BATCH):
                    connection.executemany(
                        sql,
                        (_ordered(table, r) for r in rows(table, low, min(stop, low + BATCH), now)),
                    )
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return time.perf_counter() - began
