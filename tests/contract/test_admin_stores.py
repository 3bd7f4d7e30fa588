"""What `lwa-accounts admin` adds to the store Protocols, on every implementation (SQL and
kit, SQLite and PostgreSQL): ``AccountStore.set_disabled`` and ``AuditLog.page``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lwa_accounts import errors
from lwa_accounts.core.models import AuditEvent
from lwa_accounts.store.db import Database
from tests.store.conftest import START, make_account


async def test_set_disabled_and_back(db: Database) -> None:
    alice = await make_account(db)
    async with db.transaction() as stores:
        token, _ = await stores.sessions.create(
            alice.id, "device", device_name="TV", user_agent=None, ip=None
        )
        disabled = await stores.accounts.set_disabled(alice.id, True)
    assert disabled.disabled
    assert (disabled.id, disabled.username) == (alice.id, alice.username)
    async with db.transaction() as stores:
        assert (await stores.accounts.get(alice.id)).disabled  # type: ignore[union-attr]
        assert await stores.sessions.resolve(token) is None  # a disabled account's session
        enabled = await stores.accounts.set_disabled(alice.id, False)
    assert not enabled.disabled
    async with db.transaction() as stores:
        assert await stores.sessions.resolve(token) is not None


async def test_set_disabled_of_an_unknown_account_is_not_found(db: Database) -> None:
    async with db.transaction() as stores:
        for unknown in ("acc_nobody", "999999", "x" * 500):
            with pytest.raises(errors.NotFound):
                await stores.accounts.set_disabled(unknown, True)


async def _record(db: Database, events: list[AuditEvent]) -> None:
    async with db.transaction() as stores:
        for event in events:
            await stores.audit.record(event)


async def _export(db: Database, page: int, **filters: object) -> list[tuple[str, int]]:
    """Everything, page by page, as (kind, page number)."""
    seen: list[tuple[str, int]] = []
    after = None
    for number in range(100):
        async with db.transaction() as stores:
            records = await stores.audit.page(after=after, limit=page, **filters)  # type: ignore[arg-type]
        seen += [(r.event.kind, number) for r in records]
        if len(records) < page:
            return seen
        after = records[-1].position
    raise AssertionError("the export never ended")


async def test_page_is_oldest_first_and_ties_do_not_straddle_pages_wrongly(db: Database) -> None:
    # Five events in one instant: a page boundary falls among them, so the keyset must
    # order by (at, id) and lose or repeat none. Recorded out of time order on purpose.
    later = [AuditEvent(kind=f"late{i}", at=START + timedelta(seconds=5)) for i in range(2)]
    same = [AuditEvent(kind=f"tie{i}", at=START + timedelta(seconds=1)) for i in range(5)]
    first = [AuditEvent(kind="first", at=START)]
    await _record(db, later + same + first)
    exported = await _export(db, page=3)
    assert [kind for kind, _ in exported] == [
        "first",
        *(f"tie{i}" for i in range(5)),
        "late0",
        "late1",
    ]
    assert [number for _, number in exported] == [0, 0, 0, 1, 1, 1, 2, 2]


async def test_page_filters_by_time_range_and_account(db: Database) -> None:
    events = [
        AuditEvent(kind=f"e{i}", at=START + timedelta(minutes=i), account_id=f"acc_{i % 2}")
        for i in range(10)
    ]
    await _record(db, events)
    since, until = START + timedelta(minutes=2), START + timedelta(minutes=7)
    ranged = await _export(db, page=2, since=since, until=until)
    assert [kind for kind, _ in ranged] == ["e2", "e3", "e4", "e5", "e6"]  # until excluded
    mine = await _export(db, page=2, since=since, account_id="acc_1")
    assert [kind for kind, _ in mine] == ["e3", "e5", "e7", "e9"]
    async with db.transaction() as stores:
        (only,) = await stores.audit.page(since=START + timedelta(minutes=9))
        assert only.event == events[9]
        assert only.position == (events[9].at, only.seq)
        assert len(await stores.audit.page(limit=5000)) == 10  # clipped to PAGE_MAX, not refused
        assert await stores.audit.page(until=START) == []
