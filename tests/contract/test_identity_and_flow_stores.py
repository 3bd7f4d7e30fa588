"""Identity and pending-flow stores, on SQLite and PostgreSQL (migration 0002_amazon)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from lwa_accounts import errors
from lwa_accounts.core.models import AmazonLink, AmazonProfile, NewAccount, PendingFlow
from lwa_accounts.store import migrate
from lwa_accounts.store.db import Database
from lwa_accounts.store.identities import SqlIdentityStore
from lwa_accounts.store.pending_flows import SqlPendingFlowStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
AMAZON = "amzn1.account.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
OTHER = "amzn1.account.BBBBBBBBBBBBBBBBBBBBBBBBBBBB"
CLIENT = "amzn1.application-oa2-client.test"


def link_for(account_id: str, amazon_user_id: str = AMAZON) -> AmazonLink:
    return AmazonLink(
        amazon_user_id=amazon_user_id,
        account_id=account_id,
        client_id=CLIENT,
        name="Ada",
        email="ada@example.com",
        postal_code="98052",
        linked_at=T0,
        last_sign_in_at=T0,
    )


async def new_account(db: Database, username: str) -> str:
    async with db.transaction() as stores:
        account = await stores.accounts.create(
            NewAccount(username=username, email=None, name=username, password_hash=None)
        )
    return account.id


async def test_link_round_trip_and_unlink(db: Database) -> None:
    account_id = await new_account(db, "ada")
    async with db.engine.begin() as conn:
        store = SqlIdentityStore(conn)
        await store.link(link_for(account_id))
        assert await store.get_by_amazon_user_id(AMAZON) == link_for(account_id)
        assert await store.get_for_account(account_id) == link_for(account_id)
        seen = replace(link_for(account_id), name="Ada L.", pending_email="new@example.com")
        await store.update_seen(seen)
        assert await store.get_by_amazon_user_id(AMAZON) == seen
        assert await store.unlink(account_id) is True
        assert await store.unlink(account_id) is False
        assert await store.get_by_amazon_user_id(AMAZON) is None


async def test_one_account_per_identity_and_one_identity_per_account(db: Database) -> None:
    first = await new_account(db, "ada")
    second = await new_account(db, "grace")
    async with db.engine.begin() as conn:
        store = SqlIdentityStore(conn)
        await store.link(link_for(first))
        with pytest.raises(errors.AmazonLinkedElsewhere):
            await store.link(link_for(second))
        with pytest.raises(errors.AlreadyLinked):
            await store.link(link_for(first, OTHER))
        # The savepoint kept the transaction usable.
        assert (await store.get_for_account(first)) == link_for(first)


async def test_atomic_rolls_back_create_and_link_together(db: Database) -> None:
    taken = await new_account(db, "ada")
    async with db.engine.begin() as conn:
        stores = db.stores(conn)
        identities = SqlIdentityStore(conn)
        await identities.link(link_for(taken))

        async def create_and_link() -> None:
            async with identities.atomic():
                orphan = await stores.accounts.create(
                    NewAccount(username="orphan", email=None, name="O", password_hash=None)
                )
                await identities.link(link_for(orphan.id))

        with pytest.raises(errors.AmazonLinkedElsewhere):
            await create_and_link()
        assert await stores.accounts.get_by_username("orphan") is None


def flow(id_hash: str = "a" * 64, **changes: object) -> PendingFlow:
    base = PendingFlow(
        id_hash=id_hash,
        kind="link",
        status="pending",
        profile=AmazonProfile(user_id=AMAZON, client_id=CLIENT, name="Ada", email="a@x.org"),
        target_account_id=None,
        completed_account_id=None,
        attempts_left=2,
        can_register_instead=True,
        missing=("email", "name"),
        session_kind="device",
        device_name="Living room TV",
        binding_hash=None,
        created_at=T0,
        expires_at=T0 + timedelta(minutes=10),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_pending_flow_round_trip_attempts_and_single_use(db: Database) -> None:
    account_id = await new_account(db, "ada")
    async with db.engine.begin() as conn:
        store = SqlPendingFlowStore(conn)
        created = flow(target_account_id=account_id)
        await store.create(created)
        assert await store.get(created.id_hash, for_update=True) == created
        assert await store.use_attempt(created.id_hash) == 1
        assert await store.use_attempt(created.id_hash) == 0
        assert await store.use_attempt(created.id_hash) == 0
        assert await store.transition(
            created.id_hash,
            from_status="pending",
            to_status="completed",
            completed_account_id=account_id,
        )
        # Only one of two racing uses wins.
        assert not await store.transition(created.id_hash, from_status="pending", to_status="spent")
        assert await store.transition(created.id_hash, from_status="completed", to_status="spent")
        got = await store.get(created.id_hash)
        assert got is not None
        assert (got.status, got.completed_account_id) == ("spent", account_id)
        assert await store.get("b" * 64) is None


async def test_expired_flows_are_deleted(db: Database) -> None:
    async with db.engine.begin() as conn:
        store = SqlPendingFlowStore(conn)
        await store.create(flow("a" * 64))
        await store.create(flow("b" * 64, expires_at=T0 + timedelta(hours=1)))
        assert await store.delete_expired(T0 + timedelta(minutes=10)) == 1
        assert await store.get("a" * 64) is None
        assert await store.get("b" * 64) is not None


@pytest.mark.sql_only
async def test_deleting_an_account_removes_its_identity(db: Database) -> None:
    account_id = await new_account(db, "ada")
    async with db.engine.begin() as conn:
        await SqlIdentityStore(conn).link(link_for(account_id))
        await conn.execute(text("DELETE FROM accounts WHERE id = :id"), {"id": account_id})
        assert await SqlIdentityStore(conn).get_by_amazon_user_id(AMAZON) is None


async def test_migration_0002_downgrades_to_0001(db: Database) -> None:
    await asyncio.to_thread(migrate.downgrade, db.url, "0001_accounts")
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
    assert "amazon_identities" not in tables
    assert "pending_flows" not in tables
    await db.upgrade()
