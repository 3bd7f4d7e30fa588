"""Our tables without foreign keys to our own accounts table (kit.schema / kit.migrate),
and the product's default schema left as it is."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from lwa_accounts.cli.kit import main
from lwa_accounts.kit import migrate as kit_migrate
from lwa_accounts.kit.app import KitMisconfigured, check_database
from lwa_accounts.kit.database import KitDatabase
from lwa_accounts.settings import Settings
from lwa_accounts.store import migrate
from lwa_accounts.store.engine import create_engine
from tests.kit.conftest import MAPPING

ACCOUNT_KEYS = {
    ("amazon_identities", "fk_amazon_identities_account_id_accounts"),
    ("device_grants", "fk_device_grants_account_id_accounts"),
    ("email_codes", "fk_email_codes_account_id_accounts"),
    ("pending_flows", "fk_pending_flows_completed_account_id_accounts"),
    ("pending_flows", "fk_pending_flows_target_account_id_accounts"),
    ("sessions", "fk_sessions_account_id_accounts"),
}


Shape = tuple[list[tuple[str, tuple[str, ...]]], list[str], list[str]]


def _shape(sync: Connection) -> dict[str, Shape]:
    inspector = inspect(sync)
    return {
        table: (
            sorted(
                (fk["referred_table"], tuple(fk["constrained_columns"]))
                for fk in inspector.get_foreign_keys(table)
            ),
            sorted(ix["name"] or "" for ix in inspector.get_indexes(table)),
            sorted(uq["name"] or "" for uq in inspector.get_unique_constraints(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


async def shape(url: str) -> dict[str, Shape]:
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_shape)
    finally:
        await engine.dispose()


async def test_default_product_keeps_its_foreign_keys(database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url)
    assert set(await kit_migrate.remaining_account_keys(database_url)) == ACCOUNT_KEYS


async def test_detach_drops_only_the_keys_to_accounts(database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url)
    before = await shape(database_url)
    changed = await kit_migrate.detach(database_url)
    assert sorted(set(changed)) == [
        "amazon_identities",
        "device_grants",
        "email_codes",
        "pending_flows",
        "sessions",
    ]
    assert await kit_migrate.remaining_account_keys(database_url) == []
    after = await shape(database_url)
    for table, (fks, indexes, uniques) in before.items():
        kept = [fk for fk in fks if fk[0] != "accounts"]
        assert after[table] == (kept, indexes, uniques), table
    # The key between our own tables stays.
    assert ("pending_flows", ("flow_id_hash",)) in after["device_grants"][0]
    # Idempotent: nothing left to do, and the migration chain is still at head.
    assert await kit_migrate.detach(database_url) == []
    assert await asyncio.to_thread(migrate.current, database_url) == migrate.head()


async def test_detached_tables_keep_checks_and_rows(database_url: str) -> None:
    """An install that ran the plain product first: its rows survive the detach."""
    await asyncio.to_thread(migrate.upgrade, database_url)
    engine = create_engine(database_url, null_pool=True)
    row = {
        "id": "ses_1",
        "token_hash": "a" * 64,
        "account_id": "acc_1",
        "kind": "device",
        "t": datetime(2026, 1, 1, tzinfo=UTC),
    }
    insert_session = text(
        "INSERT INTO sessions (id, token_hash, account_id, kind, created_at, last_seen_at,"
        " authenticated_at, idle_expires_at, absolute_expires_at)"
        " VALUES (:id, :token_hash, :account_id, :kind, :t, :t, :t, :t, :t)"
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO accounts (id, username, name, email_verified, disabled,"
                    " created_at, updated_at) VALUES ('acc_1', 'u', 'U', FALSE, FALSE, :t, :t)"
                ),
                {"t": row["t"]},
            )
            await conn.execute(insert_session, row)
        await kit_migrate.detach(database_url)
        async with engine.begin() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM sessions"))).scalar()
            assert count == 1
            # A foreign account id is accepted now...
            await conn.execute(
                insert_session, {**row, "id": "ses_2", "token_hash": "b" * 64, "account_id": "42"}
            )
        # ... but the checks are still there.
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(
                    insert_session,
                    {**row, "id": "ses_3", "token_hash": "c" * 64, "kind": "toaster"},
                )
    finally:
        await engine.dispose()


async def test_start_up_refuses_an_undetached_database_or_a_wrong_mapping(
    tmp_path: Path, legacy_db: str
) -> None:
    settings = Settings(env="test", data_dir=tmp_path)
    await asyncio.to_thread(migrate.upgrade, legacy_db)  # the product's migrations only
    db = KitDatabase(legacy_db, settings=settings, mapping=MAPPING)
    try:
        with pytest.raises(KitMisconfigured, match=r"python -m lwa_accounts\.kit upgrade"):
            await check_database(db)
        assert await asyncio.to_thread(main, ["upgrade", "--database-url", legacy_db]) == 0
        await check_database(db)
        wrong = KitDatabase(
            legacy_db, settings=settings, mapping=replace(MAPPING, email_column="email")
        )
        try:
            with pytest.raises(KitMisconfigured, match=r"lacks the mapped columns \['email'\]"):
                await check_database(wrong)
        finally:
            await wrong.dispose()
    finally:
        await db.dispose()
