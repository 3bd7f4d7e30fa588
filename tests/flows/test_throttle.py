"""The throttle's reservations: memory by default, Redis (several "hosts") when configured.

Every test that can run on both stores runs on both: ``throttles`` builds Throttle instances
over one memory store (one process) or over one Redis key prefix (each instance is a host).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest
import redis.asyncio as aioredis
from limits import parse

from lwa_accounts import interfaces
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account
from lwa_accounts.errors import (
    ServiceUnavailable,
    TooManyAttempts,
    UsernameTaken,
    ValidationFailed,
)
from lwa_accounts.flows.accounts import create_prepared, prepare_registration
from lwa_accounts.flows.context import Context, Deps
from lwa_accounts.flows.passwords import check_password
from lwa_accounts.interfaces import Stores
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.throttle import Bucket, PasswordReservation, Throttle, redis_client_url
from tests.flows.conftest import CLIENT, PASSWORD, START, CountingHasher, Factory, fast_settings

T = TypeVar("T")

IP = "192.0.2.1"


class _NoDatabase:
    """check_password must not open a transaction."""

    def transaction(self) -> AbstractAsyncContextManager[Stores]:
        raise AssertionError("check_password opened a transaction")

    def read(self) -> AbstractAsyncContextManager[Stores]:
        raise AssertionError("check_password opened a transaction")

    async def run_read(self, work: Callable[[Stores], Awaitable[T]]) -> T:
        raise AssertionError("check_password opened a transaction")


_NO_DB = _NoDatabase()


def test_redis_url_takes_the_limits_form_too() -> None:
    assert redis_client_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redis_client_url("async+rediss://h:1/2") == "rediss://h:1/2"


def test_the_throttle_fits_its_protocol(tmp_path: Path) -> None:
    throttle: interfaces.Throttle = Throttle(fast_settings(tmp_path))  # mypy checks the fit
    assert throttle is not None


async def test_parallel_reservations_get_exactly_the_budget(throttles: Factory) -> None:
    hosts = [throttles() for _ in range(4)]
    results = await asyncio.gather(
        *(hosts[n % 4].reserve_password("acc_1", IP) for n in range(40)), return_exceptions=True
    )
    granted = [r for r in results if isinstance(r, PasswordReservation)]
    refused = [r for r in results if isinstance(r, TooManyAttempts)]
    assert len(granted) == 5
    assert len(refused) == 35
    assert sorted(r.left for r in granted) == [0, 1, 2, 3, 4]
    assert all(r.retry_after is not None and 1 <= r.retry_after <= 15 * 60 for r in refused)


async def test_parallel_consumes_of_two_buckets_get_exactly_the_tighter_budget(
    throttles: Factory,
) -> None:
    """User-code lookups (per IP and per code) and device starts: counted either way."""
    hosts = [throttles() for _ in range(3)]
    buckets = [
        Bucket("user_code:ip", parse("20/10minutes"), IP),
        Bucket("user_code:code", parse("10/10minutes"), "BCDFGHJK"),
    ]
    results = await asyncio.gather(
        *(hosts[n % 3].consume(buckets) for n in range(40)), return_exceptions=True
    )
    assert sorted(r for r in results if isinstance(r, int)) == list(range(10))
    assert sum(isinstance(r, TooManyAttempts) for r in results) == 30
    # The IP spent exactly the 10 lookups that went through: 20 - 10 - 1 left after this.
    assert await hosts[0].consume(buckets[:1]) == 9


async def test_a_full_ip_bucket_leaves_the_account_bucket_untouched(throttles: Factory) -> None:
    throttle = throttles(password_limit_per_account_ip="3/minute", password_limit_per_ip="4/minute")
    for n in range(4):
        (await throttle.reserve_password(f"acc_{n}", IP)).failed()
    with pytest.raises(TooManyAttempts):
        await throttle.reserve_password("acc_new", IP)
    # acc_new lost nothing to the refusal: its whole budget of 3 is there from another IP.
    first = await throttle.reserve_password("acc_new", "192.0.2.2")
    assert first.left == 2


async def test_a_full_account_bucket_leaves_the_ip_bucket_untouched(throttles: Factory) -> None:
    throttle = throttles(password_limit_per_account="2/minute", password_limit_per_ip="10/minute")
    for _ in range(2):
        (await throttle.reserve_password("acc_1", "192.0.2.9")).failed()
    for _ in range(3):
        with pytest.raises(TooManyAttempts):
            await throttle.reserve_password("acc_1", IP)
    # IP spent nothing on the three refusals: 10 - 1 = 9 left after this attempt.
    ip_only = await throttle.reserve([Bucket("password:ip", parse("10/minute"), IP)])
    assert ip_only.left == 9


async def test_give_back_removes_exactly_that_attempt(throttles: Factory) -> None:
    throttle = throttles()
    bucket = [Bucket("register:ip", parse("3/hour"), IP)]
    first, second, third = [await throttle.reserve(bucket) for _ in range(3)]
    assert (first.left, second.left, third.left) == (2, 1, 0)
    with pytest.raises(TooManyAttempts):
        await throttle.reserve(bucket)
    await second.give_back()
    again = await throttle.reserve(bucket)
    assert again.left == 0  # exactly one place came back
    with pytest.raises(TooManyAttempts):
        await throttle.reserve(bucket)
    with pytest.raises(RuntimeError):
        await second.give_back()  # settled once
    with pytest.raises(RuntimeError):
        second.keep()


async def test_a_right_password_gives_its_entry_back_and_forgives_this_ips_typos(
    throttles: Factory,
) -> None:
    throttle = throttles(
        password_limit_per_account_ip="3/minute",
        password_limit_per_ip="10/minute",
        password_limit_per_account="10/minute",
    )
    for left in (2, 1):
        assert (await throttle.reserve_password("acc_1", IP)).failed() == left
    right = await throttle.reserve_password("acc_1", IP)
    assert right.left == 0
    await right.succeeded()
    assert (await throttle.reserve_password("acc_1", IP)).left == 2  # this IP's budget anew
    # The IP keeps its two wrong guesses (the right one was given back, the last one is
    # still counted): 10 - 2 - 1 - 1 = 6; so does the account's budget from every IP.
    ip_only = await throttle.reserve([Bucket("password:ip", parse("10/minute"), IP)])
    assert ip_only.left == 6
    every_ip = await throttle.reserve(throttle.password_buckets("acc_1", None))
    assert every_ip.left == 6


async def test_guesses_from_one_ip_leave_the_owner_another_ip(throttles: Factory) -> None:
    """Security item 8: limits slow attackers without locking the owner out."""
    throttle = throttles()
    for _ in range(5):
        (await throttle.reserve_password("acc_1", "203.0.113.66")).failed()
    with pytest.raises(TooManyAttempts):
        await throttle.reserve_password("acc_1", "203.0.113.66")
    owner = await throttle.reserve_password("acc_1", IP)
    assert owner.left > 0
    await owner.succeeded()


async def test_reserving_keeps_on_success_and_follows_on_error(throttles: Factory) -> None:
    throttle = throttles()
    bucket = [Bucket("register:ip", parse("10/hour"), IP)]
    with pytest.raises(LookupError):
        async with throttle.reserving(bucket, on_error="give_back"):
            raise LookupError("e.g. the username is taken")
    async with throttle.reserving(bucket, on_error="give_back") as kept:
        pass
    assert kept.left == 9
    assert kept.settled
    with pytest.raises(LookupError):
        async with throttle.reserving(bucket, on_error="keep"):
            raise LookupError("counted anyway")
    async with throttle.reserving(bucket, on_error="give_back") as settled:
        await settled.give_back()  # settled inside: nothing more happens on exit
    assert (await throttle.reserve(bucket)).left == 7  # the kept two and this one


async def test_consume_and_peek(throttles: Factory) -> None:
    throttle = throttles()
    bucket = [Bucket("device_start:ip", parse("2/hour"), IP)]
    await throttle.peek(bucket)  # grants nothing
    await throttle.peek(bucket)
    assert await throttle.consume(bucket) == 1
    assert await throttle.consume(bucket) == 0
    with pytest.raises(TooManyAttempts):
        await throttle.peek(bucket)
    with pytest.raises(TooManyAttempts):
        await throttle.consume(bucket)
    await throttle.reset(bucket)
    assert await throttle.consume(bucket) == 1


async def test_no_bucket_means_no_limit(throttles: Factory) -> None:
    throttle = throttles()
    reservation = await throttle.reserve([])
    assert reservation.left is None
    await reservation.give_back()


async def test_memory_windows_slide_and_retry_after_is_exact(tmp_path: Path) -> None:
    now = [1_000.0]
    throttle = Throttle(fast_settings(tmp_path), clock=lambda: now[0])
    per_minute = Bucket("x", parse("2/minute"), IP)
    per_hour = Bucket("y", parse("3/hour"), IP)
    await throttle.consume([per_minute, per_hour])  # t = 0
    now[0] += 20
    await throttle.consume([per_minute, per_hour])  # t = 20
    now[0] += 10
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.consume([per_minute])  # t = 30: room when the t=0 entry leaves
    assert caught.value.retry_after == 30
    now[0] += 31  # t = 61
    assert await throttle.consume([per_minute, per_hour]) == 0  # hour bucket: third of 3
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.consume([per_minute, per_hour])  # both full: the later room counts
    assert caught.value.retry_after == 3600 - 61
    now[0] += 3600
    assert await throttle.consume([per_minute, per_hour]) == 1  # everything slid out


@pytest.mark.redis
async def test_redis_windows_slide_and_keys_expire(tmp_path: Path, redis_url: str) -> None:
    prefix = f"lwa-test-{uuid.uuid4().hex}"
    throttle = Throttle(fast_settings(tmp_path, redis_url=redis_url), key_prefix=prefix)
    client = aioredis.Redis.from_url(redis_url)
    bucket = [Bucket("x", parse("2/second"), IP)]
    try:
        await throttle.consume(bucket)
        await throttle.consume(bucket)
        with pytest.raises(TooManyAttempts) as caught:
            await throttle.consume(bucket)
        assert caught.value.retry_after == 1
        assert 0 < await client.pttl(f"{prefix}:x:{IP}") <= 1000
        await asyncio.sleep(1.1)  # longer than the window: room again, whatever the load
        assert await throttle.consume(bucket) == 1
    finally:
        await client.delete(f"{prefix}:x:{IP}")
        await client.aclose()
        await throttle.aclose()


async def test_unreachable_redis_fails_closed_with_503(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    throttle = Throttle(fast_settings(tmp_path, redis_url="redis://127.0.0.1:1/0"))
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            await throttle.reserve_password("acc_x", IP)
        assert caught.value.status == 503
        assert caught.value.retry_after
        with pytest.raises(ServiceUnavailable):
            await throttle.peek_password("acc_x", IP)
        with pytest.raises(ServiceUnavailable):
            await throttle.consume(throttle.registration_buckets(IP))
    finally:
        await throttle.aclose()


# ---- the flows over the throttle -------------------------------------------------------------


class BrokenHasher(CountingHasher):
    """argon2 failing mid-check (e.g. out of memory)."""

    async def verify(self, password_hash: str, password: str) -> bool:
        raise MemoryError("argon2 could not allocate")


def flow_deps(settings: Settings, hasher: CountingHasher) -> Deps:
    return Deps(
        settings=settings,
        hasher=hasher,
        throttle=Throttle(settings),
        clock=FixedClock(START),
        common_passwords=frozenset(),
    )


async def sign_up(deps: Deps, db: Database, username: str) -> None:
    ctx = Context(deps, db, CLIENT)
    async with (
        prepare_registration(
            ctx, username=username, email=None, name="N", password=PASSWORD
        ) as prepared,
        ctx.transaction() as tx,
    ):
        await create_prepared(tx, prepared)


async def test_a_failed_registration_gives_its_reservation_back(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, registration_limit_per_ip="2/hour")
    deps = flow_deps(settings, CountingHasher(settings))
    db = Database.from_settings(settings, clock=FixedClock(START))
    await db.upgrade()
    try:
        await sign_up(deps, db, "taken")  # 1 of 2
        for _ in range(3):
            with pytest.raises(UsernameTaken):
                await sign_up(deps, db, "taken")
        with pytest.raises(ValidationFailed):
            await sign_up(deps, db, "x")  # refused before any reservation
        with pytest.raises(RuntimeError):
            async with prepare_registration(
                Context(deps, db, CLIENT), username="grace", email=None, name="G", password=PASSWORD
            ):
                raise RuntimeError("database down")
        await sign_up(deps, db, "grace")  # 2 of 2: no failure above cost anything
        with pytest.raises(TooManyAttempts):
            await sign_up(deps, db, "hopper")
    finally:
        await deps.throttle.aclose()
        await db.dispose()


async def test_a_password_check_that_raises_keeps_its_attempt(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path)  # 3 per account
    working = flow_deps(settings, CountingHasher(settings))
    broken = replace(working, hasher=BrokenHasher(settings))  # the same throttle
    account = Account(
        id="acc_1",
        username="ada",
        email=None,
        name="Ada",
        email_verified=False,
        disabled=False,
        created_at=START,
        updated_at=START,
        password_hash=await working.hasher.hash(PASSWORD),
    )
    try:
        with pytest.raises(MemoryError):
            await check_password(
                Context(broken, _NO_DB, CLIENT),
                account=account,
                account_key=account.id,
                password=PASSWORD,
            )
        check = await check_password(
            Context(working, _NO_DB, CLIENT),
            account=account,
            account_key=account.id,
            password="wrong",
        )
        assert check.reason == "wrong_password"
        assert check.error is not None
        assert check.error.extra["attempts_left"] == 1  # the check that raised counted
        right = await check_password(
            Context(working, _NO_DB, CLIENT),
            account=account,
            account_key=account.id,
            password=PASSWORD,
        )
        assert right.ok  # the last attempt of the budget, and the right password
        again = await check_password(
            Context(working, _NO_DB, CLIENT),
            account=account,
            account_key=account.id,
            password="wrong",
        )
        assert again.error is not None
        assert again.error.extra["attempts_left"] == 2  # the account's budget started again
    finally:
        await working.throttle.aclose()
