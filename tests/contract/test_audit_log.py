"""Contract tests of the SQL AuditLog (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from lwa_accounts.core.models import AuditEvent
from lwa_accounts.store.db import Database
from tests.store.conftest import START


async def test_record_and_list_newest_first(db: Database) -> None:
    events = [
        AuditEvent(kind="signin", at=START, account_id="acc_a", ip="127.0.0.1"),
        AuditEvent(
            kind="amazon_link",
            at=START + timedelta(seconds=1),
            account_id="acc_a",
            amazon_user_id="amzn1.account.X",
            client_id="amzn1.application-oa2-client.Y",
            detail="linked by password proof",
        ),
        AuditEvent(kind="signin_failed", at=START + timedelta(seconds=2), account_id="acc_b"),
    ]
    async with db.transaction() as stores:
        for event in events:
            await stores.audit.record(event)
    async with db.transaction() as stores:
        assert list(await stores.audit.list()) == events[::-1]
        assert list(await stores.audit.list(account_id="acc_a")) == events[1::-1]
        assert list(await stores.audit.list(since=START + timedelta(seconds=1))) == events[:0:-1]
        assert list(await stores.audit.list(limit=1)) == events[2:]


async def test_events_in_the_same_instant_keep_insertion_order(db: Database) -> None:
    async with db.transaction() as stores:
        for kind in ("first", "second", "third"):
            await stores.audit.record(AuditEvent(kind=kind, at=START))
        assert [e.kind for e in await stores.audit.list()] == ["third", "second", "first"]


async def test_overlong_values_are_clipped_not_fatal(db: Database) -> None:
    async with db.transaction() as stores:
        await stores.audit.record(
            AuditEvent(kind="k", at=START, ip="x" * 300, client_id="c" * 300, detail="d" * 10_000)
        )
        (event,) = await stores.audit.list()
    assert (len(event.ip or ""), len(event.client_id or "")) == (64, 128)
    assert len(event.detail or "") == 2000


async def test_rolled_back_transaction_records_nothing(db: Database) -> None:
    try:
        async with db.transaction() as stores:
            await stores.audit.record(AuditEvent(kind="ghost", at=START))
            raise LookupError
    except LookupError:
        pass
    async with db.transaction() as stores:
        assert list(await stores.audit.list()) == []
