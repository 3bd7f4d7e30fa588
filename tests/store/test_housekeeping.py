"""Housekeeping: `purge` and `lwa-accounts db prune` delete rows dead for longer than the
grace period, in bounded batches, and nothing else (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lwa_accounts.cli import main
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.device_grant import AmazonAuthorization, DeviceGrant, DeviceGrantRecord
from lwa_accounts.core.models import AmazonProfile, AuditEvent, PendingFlow
from lwa_accounts.flows.housekeeping import purge
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import (
    amazon_device_authorizations,
    audit_events,
    device_grants,
    pending_flows,
    sessions,
)
from tests.processes import run_cli
from tests.store.conftest import START, make_account

GRACE = timedelta(days=7)
DAY = 24 * 3600


def flow(id_hash: str, expires_at: datetime, **changes: object) -> PendingFlow:
    base = PendingFlow(
        id_hash=id_hash,
        kind="link",
        status="pending",
        profile=AmazonProfile(
            user_id="amzn1.account.AAAA", client_id="amzn1.application-oa2-client.t"
        ),
        target_account_id=None,
        completed_account_id=None,
        attempts_left=3,
        can_register_instead=False,
        missing=(),
        session_kind="browser",
        device_name=None,
        binding_hash=None,
        created_at=expires_at - timedelta(minutes=10),
        expires_at=expires_at,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def grant(grant_id: str, expires_at: datetime, **changes: object) -> DeviceGrantRecord:
    record = DeviceGrantRecord(
        id=grant_id,
        purpose="device",
        grant=DeviceGrant(
            status="pending",
            created_at=expires_at - timedelta(minutes=10),
            expires_at=expires_at,
            interval=5,
        ),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def authorization(id_hash: str, expires_at: datetime) -> AmazonAuthorization:
    return AmazonAuthorization(
        id_hash=id_hash,
        status="pending",
        user_code="ABCD" + id_hash[:4],
        device_code="amazon-device-code",
        verification_uri="https://amazon.com/us/code",
        device_name=None,
        interval=5,
        amazon_interval=5,
        created_at=expires_at - timedelta(minutes=10),
        expires_at=expires_at,
    )


async def add_grant(db: Database, record: DeviceGrantRecord) -> None:
    async with db.transaction() as stores:
        assert await stores.devices.create_grant(
            record, user_code_hash=record.id.ljust(64, "u"), device_code_hash=None
        )


async def ids(db: Database, column: object) -> set[str]:
    async with db.engine.connect() as conn:
        return set((await conn.execute(select(column))).scalars())  # type: ignore[call-overload]


async def count(db: Database, table: object) -> int:
    async with db.engine.connect() as conn:
        result = await conn.execute(select(func.count()).select_from(table))  # type: ignore[arg-type]
        return int(result.scalar_one())


async def test_purge_deletes_rows_dead_before_the_grace_and_keeps_the_rest(
    db: Database, clock: FixedClock
) -> None:
    account = await make_account(db)
    async with db.transaction() as stores:
        await stores.sessions.create(  # idle expiry: START + 12 h
            account.id, "browser", device_name=None, user_agent=None, ip=None
        )
        _, device = await stores.sessions.create(  # idle expiry: START + 90 days
            account.id, "device", device_name="TV", user_agent=None, ip=None
        )
        _, revoked_long_ago = await stores.sessions.create(
            account.id, "device", device_name="Old TV", user_agent=None, ip=None
        )
        assert await stores.sessions.revoke(account.id, revoked_long_ago.id)
        await stores.audit.record(
            AuditEvent(kind="signin.password", at=START, account_id=account.id)
        )
    clock.advance(2 * DAY + 13 * 3600)
    async with db.transaction() as stores:  # expires START + 3 d + 1 h: inside the grace
        _, recently_expired = await stores.sessions.create(
            account.id, "browser", device_name=None, user_agent=None, ip=None
        )
    now = START + timedelta(days=10)
    clock.advance((now - clock.now()).total_seconds())
    async with db.transaction() as stores:
        _, live = await stores.sessions.create(
            account.id, "browser", device_name=None, user_agent=None, ip=None
        )
        _, revoked_just_now = await stores.sessions.create(
            account.id, "device", device_name=None, user_agent=None, ip=None
        )
        assert await stores.sessions.revoke(account.id, revoked_just_now.id)

        old, recent = START + timedelta(days=1), now - timedelta(days=1)
        await stores.pending_flows.create(flow("a" * 64, old))
        await stores.pending_flows.create(flow("b" * 64, old, status="spent"))
        await stores.pending_flows.create(flow("c" * 64, recent))
        await stores.pending_flows.create(flow("d" * 64, now + timedelta(minutes=5)))
        await stores.devices.create_authorization(authorization("e" * 64, old))
        await stores.devices.create_authorization(authorization("f" * 64, recent))
    consumed = replace(grant("x", old).grant, status="consumed")
    await add_grant(db, grant("grant_old", old, grant=consumed))
    # A hand-off grant points at its (old) flow: both go, in an order the foreign key allows.
    await add_grant(db, grant("grant_handoff", old, purpose="handoff", flow_id_hash="a" * 64))
    await add_grant(db, grant("grant_live", now + timedelta(minutes=5)))

    async with db.transaction() as stores:
        counts = await purge(stores, now, GRACE, 100)
    assert counts == {"sessions": 2, "devices": 3, "pending_flows": 2, "mail": 0}

    assert await ids(db, sessions.c.id) == {
        device.id,
        recently_expired.id,
        live.id,
        revoked_just_now.id,
    }
    assert await ids(db, pending_flows.c.id_hash) == {"c" * 64, "d" * 64}
    assert await ids(db, device_grants.c.id) == {"grant_live"}
    assert await ids(db, amazon_device_authorizations.c.id_hash) == {"f" * 64}
    assert await count(db, audit_events) == 1  # the log is never pruned

    async with db.transaction() as stores:  # nothing left to do
        assert await purge(stores, now, GRACE, 100) == dict.fromkeys(counts, 0)


async def test_purge_deletes_at_most_limit_rows_of_each_kind_per_call(
    db: Database, clock: FixedClock
) -> None:
    account = await make_account(db)
    async with db.transaction() as stores:
        for _ in range(3):  # expire (idle) within a day
            await stores.sessions.create(
                account.id, "browser", device_name=None, user_agent=None, ip=None
            )
        for _ in range(2):  # live for 90 days, but revoked
            _, session = await stores.sessions.create(
                account.id, "device", device_name=None, user_agent=None, ip=None
            )
            assert await stores.sessions.revoke(account.id, session.id)
        for n in range(5):
            await stores.pending_flows.create(flow(str(n) * 64, START))
        for n in range(2):
            await stores.devices.create_authorization(authorization(str(n) * 64, START))
    for n in range(3):
        await add_grant(db, grant(f"grant_{n}", START))

    now = START + GRACE + timedelta(days=2)
    batches = []
    for _ in range(4):
        async with db.transaction() as stores:
            batches.append(await purge(stores, now, GRACE, 2))
    assert [b["sessions"] for b in batches] == [2, 2, 1, 0]
    assert [b["devices"] for b in batches] == [2, 2, 1, 0]
    assert [b["pending_flows"] for b in batches] == [2, 2, 1, 0]
    assert await count(db, sessions) == 0


async def test_purge_refuses_a_limit_below_one_and_a_negative_grace(db: Database) -> None:
    async with db.transaction() as stores:
        with pytest.raises(ValueError, match="limit"):
            await purge(stores, START, GRACE, 0)
        with pytest.raises(ValueError, match="grace"):
            await purge(stores, START, -GRACE, 10)


async def test_db_prune_command_loops_batches_until_done(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    settings = Settings(env="development", data_dir=data_dir, database_url=database_url)
    # Rows written a month ago (the command runs on the real clock).
    month_ago = datetime.now(UTC) - timedelta(days=30)
    db = Database(database_url, settings=settings, clock=FixedClock(month_ago))
    await db.upgrade()
    try:
        account = await make_account(db)
        async with db.transaction() as stores:
            for _ in range(5):
                await stores.sessions.create(
                    account.id, "browser", device_name=None, user_agent=None, ip=None
                )
            _, live = await stores.sessions.create(
                account.id, "device", device_name=None, user_agent=None, ip=None
            )
            await stores.pending_flows.create(flow("a" * 64, month_ago))
    finally:
        await db.dispose()

    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env |= {
        "LWA_ACCOUNTS_ENV": "development",
        "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
        "LWA_ACCOUNTS_DATABASE_URL": database_url,
        "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
    }
    result = run_cli("db", "prune", "--grace-days", "7", "--batch", "2", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "sessions: 5 deleted",
        "devices: 0 deleted",
        "pending_flows: 1 deleted",
        "mail: 0 deleted",  # tests/mail/test_housekeeping.py prunes mail
    ]
    db = Database(database_url, settings=settings)
    try:
        assert await ids(db, sessions.c.id) == {live.id}
        # A grace longer than the rows' age keeps everything.
        result = run_cli("db", "prune", "--grace-days", "60", env=env)
        assert result.returncode == 0, result.stderr
        assert "sessions: 0 deleted" in result.stdout
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    "args",
    [["--batch", "0"], ["--batch", "many"], ["--grace-days", "-1"], ["--grace-days", "99999"]],
)
def test_db_prune_refuses_bad_options(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["db", "prune", *args])
    assert exit_info.value.code == 2
    assert args[0] in capsys.readouterr().err
