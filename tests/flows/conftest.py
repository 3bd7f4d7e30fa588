"""Flow fixtures: a real SQLite database in tmp_path, fast argon2, a fixed clock, and
``throttles`` (every throttle test on the memory store and on Redis)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import redis.asyncio as aioredis

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account
from lwa_accounts.flows.accounts import register
from lwa_accounts.flows.context import ClientInfo, Context, Deps, Tx
from lwa_accounts.flows.email_verification import verify_code
from lwa_accounts.passwords import Argon2Hasher, common_passwords
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing import offline_settings
from lwa_accounts.testing.mail import code_in, queued_mail
from lwa_accounts.throttle import Throttle

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "tangerine-elephant-42"
CLIENT = ClientInfo(ip="198.51.100.7", user_agent="pytest")
T = TypeVar("T")


class CountingHasher(Argon2Hasher):
    """The real hasher, counting verifications (to prove unknown users cost one too)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.verifications = 0
        self.hashes = 0

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return await super().verify(password_hash, password)

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return await super().hash(password)


def fast_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "password_limit_per_account_ip": "3/15minutes",
        "password_limit_per_ip": "10/15minutes",
    }
    return offline_settings(tmp_path, **{**values, **overrides})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
async def db(settings: Settings, clock: FixedClock) -> AsyncIterator[Database]:
    database = Database.from_settings(settings, clock=clock)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def hasher(settings: Settings) -> CountingHasher:
    return CountingHasher(settings)


@pytest.fixture
async def deps(
    settings: Settings, hasher: CountingHasher, clock: FixedClock
) -> AsyncIterator[Deps]:
    throttle = Throttle(settings)
    yield Deps(
        settings=settings,
        hasher=hasher,
        throttle=throttle,
        clock=clock,
        common_passwords=common_passwords(),
    )
    await throttle.aclose()


@pytest.fixture
def ctx(deps: Deps, db: Database) -> Context:
    """A request's context as the edge builds it: this process's deps, the database, CLIENT."""
    return Context(deps, db, CLIENT)


async def make_user(
    ctx: Context | Database,
    deps: Deps | None = None,
    username: str = "ada",
    email: str | None = "ada@example.com",
    *,
    verified: bool = False,
) -> Account:
    """A password account (``make_user(ctx)`` or ``make_user(db, deps)``); ``verified``:
    its address confirmed with the code its registration mailed to it."""
    if isinstance(ctx, Database):
        assert deps is not None
        ctx = context_of(ctx, deps)
    async with ctx.transaction() as tx:
        account = await register(
            tx, username=username, email=email, name="Ada Lovelace", password=PASSWORD
        )
    return await verify_address(ctx, account) if verified else account


async def verify_address(ctx: Context, account: Account) -> Account:
    """Confirm the account's address as its owner would: the code of the last
    verification mail sent to it, typed in (``flows/email_verification.py``)."""
    assert account.email is not None
    assert isinstance(ctx.database, Database)
    mail = [
        m
        for m in await queued_mail(ctx.database, account.email)
        if m.kind == "verify_email" and f'"{account.username}"' in m.text  # this account's
    ]
    assert mail, f"no verification mail for {account.username} at {account.email}"
    async with ctx.transaction() as tx:
        return (await verify_code(tx, account, code_in(mail[-1]))).account


def context_of(db: Database, deps: Deps, client: ClientInfo = CLIENT) -> Context:
    return Context(deps, db, client)


async def in_transaction(
    db: Database, deps: Deps, step: Callable[[Tx], Awaitable[T]], client: ClientInfo = CLIENT
) -> T:
    """``step`` in one transaction of a request's context, as an edge runs it: a refusal
    raises (after the rollback path wrote its kept audit events and writes)."""
    async with context_of(db, deps, client).transaction() as tx:
        return await step(tx)


Factory = Callable[..., Throttle]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def throttles(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """``throttles(**settings)`` -> a Throttle; all of one test share one store. On the
    memory store ``clock=`` (seconds) drives its windows; Redis keeps its own time."""
    made: list[Throttle] = []
    shared: dict[str, Throttle] = {}
    prefix = f"lwa-test-{uuid.uuid4().hex}"
    redis_url: str | None = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")

    def make(clock: Callable[[], float] = time.time, **overrides: object) -> Throttle:
        values: dict[str, object] = {
            "password_limit_per_account_ip": "5/15minutes",
            "password_limit_per_account": "20/15minutes",
        }
        values.update(overrides)
        if redis_url is None:
            # One process: every "instance" is the same Throttle (one memory store).
            if "memory" not in shared:
                shared["memory"] = Throttle(fast_settings(tmp_path, **values), clock=clock)
            return shared["memory"]
        throttle = Throttle(
            fast_settings(tmp_path, redis_url=redis_url, **values), key_prefix=prefix
        )
        made.append(throttle)
        return throttle

    yield make
    for throttle in made + list(shared.values()):
        await throttle.aclose()
    if redis_url is not None:
        client = aioredis.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=prefix + ":*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
