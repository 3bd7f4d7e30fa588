"""ForeignAccountStore against the AccountStore contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import NewAccount
from lwa_accounts.kit.accounts import UNKNOWN_TIME
from lwa_accounts.kit.database import KitDatabase
from lwa_accounts.kit.mapping import UsersTableMapping
from lwa_accounts.settings import Settings
from tests.kit.conftest import DJANGO_MYSTERY, MAPPING, create_legacy_table, fetch

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path, legacy_db: str) -> AsyncIterator[KitDatabase]:
    database = KitDatabase(
        legacy_db,
        settings=Settings(env="test", data_dir=tmp_path),
        mapping=MAPPING,
        clock=FixedClock(NOW),
    )
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


async def test_lookups(db: KitDatabase, legacy_db: str) -> None:
    pk = (await fetch(legacy_db, "SELECT user_pk FROM legacy_users WHERE login = 'django'"))[0]
    async with db.transaction() as stores:
        account = await stores.accounts.get(str(pk["user_pk"]))
        assert account is not None
        assert account.username == "django"
        assert account.email == "django@example.com"
        assert account.name == "Django User"
        assert account.password_hash == DJANGO_MYSTERY
        assert not account.disabled
        assert not account.email_verified
        # A naive legacy timestamp read as UTC; no updated column: the created time.
        assert account.created_at == datetime(2015, 6, 1, 8, 30, tzinfo=UTC)
        assert account.updated_at == account.created_at

        for spelled in ("django", "DJANGO", " Django "):
            found = await stores.accounts.get_by_username(spelled)
            assert found is not None
            assert found.id == account.id
        for spelled in ("django@example.com", "Django@EXAMPLE.com"):
            by_mail = await stores.accounts.get_by_email(spelled)
            assert by_mail is not None
            assert by_mail.id == account.id
            by_login = await stores.accounts.get_by_login(spelled)
            assert by_login is not None
            assert by_login.id == account.id
        ada = await stores.accounts.get_by_email("ada@example.com")  # stored "Ada@Example.com"
        assert ada is not None
        assert ada.username == "AdaL"

        olga = await stores.accounts.get_by_username("olga")
        assert olga is not None
        assert olga.disabled
        assert olga.name == "olga"  # NULL name

        for missing in ("nobody", "", "   "):
            assert await stores.accounts.get_by_username(missing) is None
        assert await stores.accounts.get_by_email("nobody@example.com") is None
        for bad_id in ("", "abc", "-1", "1.0", "١٢", "9" * 30, "acc_xyz", "99999"):
            assert await stores.accounts.get(bad_id) is None, bad_id
            assert await stores.accounts.lock(bad_id) is None, bad_id
        locked = await stores.accounts.lock(account.id)
        assert locked == account


async def test_case_twins_in_a_legacy_table(db: KitDatabase, legacy_db: str) -> None:
    """A table that never enforced case-insensitive uniqueness: exact spelling wins,
    otherwise nobody (never an arbitrary one of the twins)."""
    async with db.engine.begin() as conn:
        for login in ("Twin", "twin"):
            await conn.execute(
                text("INSERT INTO legacy_users (login, pw, active) VALUES (:l, 'x', TRUE)"),
                {"l": login},
            )
    async with db.transaction() as stores:
        exact = await stores.accounts.get_by_username("Twin")
        assert exact is not None
        assert exact.username == "Twin"
        lower = await stores.accounts.get_by_username("twin")
        assert lower is not None
        assert lower.username == "twin"
        assert await stores.accounts.get_by_username("TWIN") is None


async def test_create_update_and_conflicts(db: KitDatabase, legacy_db: str) -> None:
    async with db.transaction() as stores:
        created = await stores.accounts.create(
            NewAccount(username="Newbie", email="New@Example.com", name="New B", password_hash=None)
        )
        assert created.username == "Newbie"
        assert created.email == "New@Example.com"
        assert created.password_hash is None  # stored as the mapping's "!" marker
        assert created.created_at == NOW
        with pytest.raises(errors.UsernameTaken):
            await stores.accounts.create(
                NewAccount(username="NEWBIE", email=None, name="x", password_hash=None)
            )
        with pytest.raises(errors.EmailTaken):
            await stores.accounts.create(
                NewAccount(username="other", email="new@example.com", name="x", password_hash=None)
            )
        # The transaction is still usable after the refusals.
        updated = await stores.accounts.update(
            created.id, name="Renamed", password_hash="$argon2id$fake", email="n2@example.com"
        )
        assert (updated.name, updated.email, updated.password_hash) == (
            "Renamed",
            "n2@example.com",
            "$argon2id$fake",
        )
        with pytest.raises(errors.EmailTaken):
            await stores.accounts.update(created.id, email="DJANGO@example.com")
        same = await stores.accounts.update(created.id, email="N2@example.com")  # its own
        assert same.email == "N2@example.com"
        removed = await stores.accounts.update(created.id, email="")
        assert removed.email is None
        with pytest.raises(errors.NotFound):
            await stores.accounts.update("424242", name="x")
        with pytest.raises(errors.NotFound):
            await stores.accounts.update("not-a-number", name="x")
    rows = await fetch(legacy_db, "SELECT * FROM legacy_users WHERE login = 'Newbie'")
    assert rows[0]["pw"] == "$argon2id$fake"
    assert rows[0]["mail"] is None
    assert rows[0]["shoe_size"] is None  # unmapped columns are left to their defaults


async def test_list_is_oldest_first(db: KitDatabase) -> None:
    async with db.transaction() as stores:
        first = await stores.accounts.list(limit=3)
        rest = await stores.accounts.list(limit=100, offset=3)
    ids = [a.id for a in first] + [a.id for a in rest]
    assert len(ids) == 7 == len(set(ids))
    assert ids == sorted(ids, key=int)  # same joined time: by id


async def test_text_ids_disabled_flag_and_no_optional_columns(
    tmp_path: Path, database_url: str
) -> None:
    """Another shape of table: text ids from a factory, a 'disabled' flag, no email."""
    async with KitDatabase(
        database_url, settings=Settings(env="test", data_dir=tmp_path), mapping=MAPPING
    ).engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE members (uid VARCHAR(32) PRIMARY KEY, handle VARCHAR(50) UNIQUE,"
                " secret VARCHAR(255), banned BOOLEAN NOT NULL DEFAULT FALSE,"
                " since TIMESTAMP WITH TIME ZONE, changed TIMESTAMP WITH TIME ZONE)"
            )
        )
    counter = itertools.count(1)
    mapping = UsersTableMapping(
        table="members",
        id_column="uid",
        username_column="handle",
        password_column="secret",
        disabled_column="banned",
        created_column="since",
        updated_column="changed",
        integer_ids=False,
        new_text_id=lambda: f"m-{next(counter)}",
    )
    clock = FixedClock(NOW)
    db = KitDatabase(
        database_url,
        settings=Settings(env="test", data_dir=tmp_path),
        mapping=mapping,
        clock=clock,
    )
    try:
        async with db.transaction() as stores:
            a = await stores.accounts.create(
                NewAccount(username="kim", email="kim@example.com", name="Kim", password_hash="h")
            )
            assert (a.id, a.email, a.name, a.disabled) == ("m-1", None, "kim", False)
            assert a.postal_code is None  # no postal code column: none stored, none shown
            assert a.created_at == NOW
            assert a.updated_at == NOW
            assert await stores.accounts.get_by_email("kim@example.com") is None
            assert await stores.accounts.get("x" * 33) is None
            clock.advance(3600)
            changed = await stores.accounts.update(
                "m-1", email="kim@example.com", name="x", postal_code="10115"
            )
            assert changed.postal_code is None
            assert (changed.created_at, changed.updated_at) == (NOW, NOW + timedelta(seconds=3600))
            assert changed.created_at.tzinfo is not None
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE members SET banned = TRUE"))
        async with db.transaction() as stores:
            banned = await stores.accounts.get_by_login("KIM")
            assert banned is not None
            assert banned.disabled
            assert banned.password_hash == "h"
    finally:
        await db.dispose()


def test_mapping_refuses_contradictions() -> None:
    with pytest.raises(ValueError, match="not both"):
        UsersTableMapping("t", "id", "u", "p", active_column="a", disabled_column="d")
    with pytest.raises(ValueError, match="integer_ids"):
        UsersTableMapping("t", "id", "u", "p", new_text_id=lambda: "x")


async def test_unusable_password_markers(tmp_path: Path, database_url: str) -> None:
    from tests.kit.conftest import LegacyUser

    users = tuple(
        LegacyUser(f"u{i}", None, None, "", pw) for i, pw in enumerate(["!", "", "!Xy12ab"])
    )
    await create_legacy_table(database_url, users)
    undated = replace(MAPPING, created_column=None)
    db = KitDatabase(
        database_url, settings=Settings(env="test", data_dir=tmp_path), mapping=undated
    )
    try:
        async with db.transaction() as stores:
            accounts = await stores.accounts.list()
            assert len(accounts) == 3
            for account in accounts:
                assert account.created_at == UNKNOWN_TIME
                assert account.updated_at == UNKNOWN_TIME
                assert account.password_hash is None
                assert not account.has_password
    finally:
        await db.dispose()
