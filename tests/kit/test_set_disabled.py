"""``set_disabled`` over a company's table: the mapped flag is written the table's way
(``active`` is covered by the contract suite, a ``disabled``-style flag here), and a table
with neither column cannot be disabled: ``not_supported``, nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from lwa_accounts import errors
from lwa_accounts.clock import SystemClock
from lwa_accounts.core.models import AuditEvent, NewAccount
from lwa_accounts.flows import admin
from lwa_accounts.flows.context import Context, Deps
from lwa_accounts.kit.database import KitDatabase
from lwa_accounts.kit.mapping import UsersTableMapping
from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.settings import Settings
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import CLIENT
from tests.kit.conftest import MAPPING, fetch


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    settings = Settings(env="test", data_dir=tmp_path)
    throttle = Throttle(settings)
    yield Deps(settings, Argon2Hasher(settings), throttle, SystemClock(), frozenset())
    await throttle.aclose()


async def _kit(tmp_path: Path, url: str, disabled_column: str | None = None) -> KitDatabase:
    settings = Settings(env="test", data_dir=tmp_path)
    mapping = UsersTableMapping(
        table="members",
        id_column="id",
        username_column="handle",
        password_column="pw",
        disabled_column=disabled_column,
    )
    db = KitDatabase(url, settings=settings, mapping=mapping)
    serial = "SERIAL" if db.dialect_name == "postgresql" else "INTEGER"
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE members (id {serial} PRIMARY KEY, handle VARCHAR(50) UNIQUE,"
                " pw VARCHAR(255), banned BOOLEAN NOT NULL DEFAULT FALSE)"
            )
        )
    await db.upgrade()
    return db


async def _banned(db: KitDatabase) -> list[bool]:
    async with db.engine.begin() as conn:
        return [bool(b) for (b,) in await conn.execute(text("SELECT banned FROM members"))]


async def test_a_disabled_flag_column_is_written(tmp_path: Path, database_url: str) -> None:
    db = await _kit(tmp_path, database_url, disabled_column="banned")
    try:
        async with db.transaction() as stores:
            kim = await stores.accounts.create(
                NewAccount(username="kim", email=None, name="Kim", password_hash="h")
            )
            assert (await stores.accounts.set_disabled(kim.id, True)).disabled
        assert await _banned(db) == [True]
        async with db.transaction() as stores:
            assert not (await stores.accounts.set_disabled(kim.id, False)).disabled
        assert await _banned(db) == [False]
    finally:
        await db.dispose()


async def test_a_table_without_a_flag_cannot_be_disabled(
    tmp_path: Path, database_url: str, deps: Deps
) -> None:
    db = await _kit(tmp_path, database_url)
    try:
        async with db.transaction() as stores:
            kim = await stores.accounts.create(
                NewAccount(username="kim", email=None, name="Kim", password_hash="h")
            )
            token, _ = await stores.sessions.create(
                kim.id, "device", device_name="TV", user_agent=None, ip=None
            )
        ctx = Context(deps, db, CLIENT)
        with pytest.raises(errors.NotSupported):
            async with ctx.transaction() as tx:
                await admin.disable_account(tx, kim.id, operator="ops")
        # Rolled back whole: the session still works and nothing was audited.
        async with db.transaction() as stores:
            assert await stores.sessions.resolve(token) is not None
            assert [e.kind for e in await stores.audit.list()] == []
        assert await _banned(db) == [False]
    finally:
        await db.dispose()


async def test_the_admin_flows_over_a_company_table(
    tmp_path: Path, legacy_db: str, deps: Deps
) -> None:
    """find, revoke and disable/enable reach the company's own users table (``active``)."""
    db = KitDatabase(legacy_db, settings=deps.settings, mapping=MAPPING)
    await db.upgrade()
    try:
        ctx = Context(deps, db, CLIENT)
        async with db.transaction() as stores:
            sid = await stores.accounts.get_by_username("sid")
            assert sid is not None
            token, _ = await stores.sessions.create(
                sid.id, "device", device_name="TV", user_agent=None, ip=None
            )
        report = await admin.find_account(ctx, "email", "SID@example.com")
        assert report.account.id == sid.id
        assert [s.device_name for s in report.sessions] == ["TV"]
        async with ctx.transaction() as tx:
            change = await admin.disable_account(tx, sid.id, operator="ops")
        assert (change.changed, change.ended_sessions) == (True, 1)
        (row,) = await fetch(legacy_db, "SELECT active FROM legacy_users WHERE login = 'sid'")
        assert not row["active"]
        async with ctx.transaction() as tx:
            assert (await admin.enable_account(tx, sid.id, operator="ops")).changed
        async with db.transaction() as stores:
            assert await stores.sessions.resolve(token) is None  # ended by disable
            assert not (await stores.accounts.get(sid.id)).disabled  # type: ignore[union-attr]
        kinds = [e.kind for e in await _all_events(db)]
        assert kinds == ["admin.account_disabled", "admin.account_enabled"]
    finally:
        await db.dispose()


async def _all_events(db: KitDatabase) -> list[AuditEvent]:
    async with db.transaction() as stores:
        return list(reversed(await stores.audit.list()))
