"""The unit of work (flows/context.py): a refusal rolls the business writes back, but
kept audit events and ``tx.keep`` writes survive it, written once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

import pytest

from lwa_accounts.core.models import AuditEvent, NewAccount
from lwa_accounts.errors import DatabaseUnavailable, InvalidCredentials
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Deps, Tx
from lwa_accounts.interfaces import Stores
from lwa_accounts.store.db import Database
from tests.flows.conftest import CLIENT

T = TypeVar("T")


async def events(db: Database) -> list[AuditEvent]:
    async with db.transaction() as stores:
        return list(reversed(await stores.audit.list(limit=100)))


async def usernames(db: Database) -> list[str]:
    async with db.transaction() as stores:
        return [account.username for account in await stores.accounts.list()]


def test_only_attempts_are_kept() -> None:
    kept = {kind.value for kind in Event if kind.kept}
    assert kept == {
        "signin.failed",
        "signin.throttled",
        "amazon.refused",
        "amazon.signin_conflict",
        "device.user_code_refused",
        "notice.not_me_refused",
        "password.reset_refused",
    }
    assert len({kind.value for kind in Event}) == len(Event)  # no kind string twice


async def test_a_commit_writes_each_event_once_in_order(ctx: Context, db: Database) -> None:
    async with ctx.transaction() as tx:
        tx.audit(Event.SESSION_STARTED, account_id="acc_1", detail="first")
        tx.audit(Event.SIGN_IN_FAILED, account_id="acc_1", detail="second")
    written = await events(db)
    assert [(e.kind, e.detail) for e in written] == [
        ("session.started", "first"),
        ("signin.failed", "second"),
    ]
    assert all(e.ip == CLIENT.ip for e in written)


async def run(ctx: Context, body: Callable[[Tx], Awaitable[None]]) -> None:
    async with ctx.transaction() as tx:
        await body(tx)


async def test_a_refusal_keeps_attempts_and_undoes_the_rest(ctx: Context, db: Database) -> None:
    async def kept_write(stores: Stores) -> str:
        account = await stores.accounts.create(
            NewAccount(username="kept", email=None, name="Kept", password_hash=None)
        )
        return account.username

    async def refused(tx: Tx) -> None:
        await tx.accounts.create(
            NewAccount(username="gone", email=None, name="Gone", password_hash=None)
        )
        tx.audit(Event.ACCOUNT_REGISTERED, detail="rolled back")
        tx.audit(Event.SIGN_IN_FAILED, detail="reason=wrong_password")
        assert await tx.keep(kept_write) == "kept"
        raise InvalidCredentials()

    with pytest.raises(InvalidCredentials):
        await run(ctx, refused)
    assert [(e.kind, e.detail) for e in await events(db)] == [
        ("signin.failed", "reason=wrong_password")
    ]
    assert await usernames(db) == ["kept"]  # replayed once after the rollback


async def test_a_bug_keeps_attempts_too(ctx: Context, db: Database) -> None:
    async def buggy(tx: Tx) -> None:
        tx.audit(Event.AMAZON_REFUSED, detail="reason=x")
        tx.audit(Event.AMAZON_LINKED)
        _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        await run(ctx, buggy)
    assert [e.kind for e in await events(db)] == ["amazon.refused"]


class _DownAfterFirst:
    """A database that works once, then is down (the outage starts mid-request)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.opened = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Stores]:
        self.opened += 1
        if self.opened > 1:
            raise DatabaseUnavailable()
        async with self.db.transaction() as stores:
            yield stores

    def read(self) -> AbstractAsyncContextManager[Stores]:
        return self.transaction()

    async def run_read(self, work: Callable[[Stores], Awaitable[T]]) -> T:
        async with self.read() as stores:
            return await work(stores)


async def test_no_replay_when_the_database_is_down(deps: Deps, db: Database) -> None:
    down = _DownAfterFirst(db)
    ctx = Context(deps, down, CLIENT)

    async def outage(tx: Tx) -> None:
        tx.audit(Event.SIGN_IN_FAILED)
        raise DatabaseUnavailable()

    with pytest.raises(DatabaseUnavailable):
        await run(ctx, outage)
    assert down.opened == 1  # no second transaction was tried
    assert await events(db) == []


async def test_a_failed_replay_still_raises_the_refusal(
    deps: Deps, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    down = _DownAfterFirst(db)
    ctx = Context(deps, down, CLIENT)

    async def wrong(tx: Tx) -> None:
        tx.audit(Event.SIGN_IN_FAILED)
        raise InvalidCredentials()

    with pytest.raises(InvalidCredentials):
        await run(ctx, wrong)
    assert down.opened == 2
    assert "could not keep 1 audit events" in caplog.text


async def test_a_kept_write_in_a_commit_runs_once(ctx: Context, db: Database) -> None:
    runs: list[str] = []

    async def kept_write(stores: Stores) -> None:
        runs.append("ran")
        await stores.accounts.create(
            NewAccount(username="once", email=None, name="Once", password_hash=None)
        )

    async with ctx.transaction() as tx:
        await tx.keep(kept_write)
        tx.audit(Event.SIGN_IN_FAILED, detail="kept kind, committed")
    assert runs == ["ran"]  # no replay without a rollback
    assert await usernames(db) == ["once"]
    assert [e.detail for e in await events(db)] == ["kept kind, committed"]


async def test_kept_events_survive_in_their_order(ctx: Context, db: Database) -> None:
    async def refused(tx: Tx) -> None:
        tx.audit(Event.SIGN_IN_FAILED, detail="1")
        tx.audit(Event.SESSION_STARTED, detail="rolled back")
        tx.audit(Event.DEVICE_USER_CODE_REFUSED, detail="2")
        tx.audit(Event.DEVICE_APPROVED, detail="rolled back")
        tx.audit(Event.AMAZON_REFUSED, detail="3")
        raise InvalidCredentials()

    with pytest.raises(InvalidCredentials):
        await run(ctx, refused)
    assert [(e.kind, e.detail) for e in await events(db)] == [
        ("signin.failed", "1"),
        ("device.user_code_refused", "2"),
        ("amazon.refused", "3"),
    ]


async def test_no_kept_write_is_replayed_when_the_database_is_down(
    deps: Deps, db: Database
) -> None:
    down = _DownAfterFirst(db)
    ctx = Context(deps, down, CLIENT)
    runs: list[str] = []

    async def kept_write(stores: Stores) -> None:
        runs.append("ran")

    async def outage(tx: Tx) -> None:
        await tx.keep(kept_write)
        raise DatabaseUnavailable()

    with pytest.raises(DatabaseUnavailable):
        await run(ctx, outage)
    assert (runs, down.opened) == (["ran"], 1)
