"""security.md item 8 at the throttle: progressive delays instead of a wall, known devices'
own budgets, and ``forgive_account``; on the memory store and on Redis (several "hosts").

The schedule (docs/security.md, settings ``PASSWORD_LIMIT_PER_ACCOUNT``,
``PASSWORD_DELAY_FIRST_SECONDS``, ``PASSWORD_DELAY_MAX_SECONDS``): the account's free
failures go at once; then each attempt waits after the previous one, the first delay
doubling per failure up to the longest.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from limits import parse
from pydantic import ValidationError

from lwa_accounts.errors import TooManyAttempts
from lwa_accounts.throttle import Backoff, Bucket, PasswordReservation, Throttle
from lwa_accounts.throttle.stores import Full, Granted, MemoryStore, RedisStore, Store
from tests.flows.conftest import Factory, fast_settings

IP = "192.0.2.1"


def addresses() -> Iterator[str]:
    """A new client address for every attempt (no per-IP budget gets in the way)."""
    n = 0
    while True:
        n += 1
        yield f"10.{n // 250 % 250}.{n % 250}.1"


async def refused_wait(throttle: Throttle, account: str, ip: str, device: str | None = None) -> int:
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.reserve_password(account, ip, device=device)
    assert caught.value.retry_after is not None
    return caught.value.retry_after


# ---- progressive delays ----------------------------------------------------------------------


async def test_the_accounts_budget_delays_progressively_and_never_walls(tmp_path: Path) -> None:
    """The defaults, on a clock of our own: 10 failures from ten addresses go at once; then
    1, 2, 4, 8 minutes after the previous attempt, then 15 minutes for ever (never more),
    and the wait is exactly the one the refusal names."""
    now = [1_000_000.0]
    settings = fast_settings(tmp_path, password_limit_per_account_ip="100/15minutes")
    throttle = Throttle(settings, clock=lambda: now[0])
    ips = addresses()
    for left in range(9, -1, -1):
        assert (await throttle.reserve_password("acc_1", next(ips))).failed() == left
    waits = []
    for _ in range(7):
        wait = await refused_wait(throttle, "acc_1", next(ips))
        waits.append(wait)
        now[0] += wait - 1
        assert await refused_wait(throttle, "acc_1", next(ips)) == 1  # not a second early
        now[0] += 1
        (await throttle.reserve_password("acc_1", next(ips))).failed()
    assert waits == [60, 120, 240, 480, 900, 900, 900]
    # A whole day of guessing later the wait is still the longest delay, never a wall.
    for _ in range(100):
        now[0] += 900
        (await throttle.reserve_password("acc_1", next(ips))).failed()
    assert await refused_wait(throttle, "acc_1", next(ips)) == 900
    # A day without failures: the free budget is back.
    now[0] += 86_400
    assert (await throttle.reserve_password("acc_1", next(ips))).left == 9
    await throttle.aclose()


async def test_delays_follow_the_settings(tmp_path: Path) -> None:
    now = [5_000.0]
    settings = fast_settings(
        tmp_path,
        password_limit_per_account="2/hour",
        password_delay_first_seconds=5,
        password_delay_max_seconds=12,
    )
    throttle = Throttle(settings, clock=lambda: now[0])
    ips = addresses()
    waits = []
    for _ in range(2):
        (await throttle.reserve_password("acc_1", next(ips))).failed()
    for _ in range(4):
        wait = await refused_wait(throttle, "acc_1", next(ips))
        waits.append(wait)
        now[0] += wait
        (await throttle.reserve_password("acc_1", next(ips))).failed()
    assert waits == [5, 10, 12, 12]
    await throttle.aclose()


@pytest.mark.parametrize("tiers", ["20/15minutes;100/day", "5/minute,10/hour"])
def test_the_accounts_budget_takes_one_rate_not_the_old_tiers(tmp_path: Path, tiers: str) -> None:
    with pytest.raises(ValidationError) as refused:
        fast_settings(tmp_path, password_limit_per_account=tiers)
    assert "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT takes one rate" in str(refused.value)


def test_the_longest_delay_is_not_shorter_than_the_first(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        fast_settings(tmp_path, password_delay_first_seconds=60, password_delay_max_seconds=30)
    assert "LWA_ACCOUNTS_PASSWORD_DELAY_MAX_SECONDS must be at least" in str(refused.value)
    with pytest.raises(ValidationError):
        fast_settings(tmp_path, password_delay_first_seconds=0)


StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def hosts(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """``hosts()`` -> a store: one memory store, or a new Redis client per call (each a host
    sharing one key prefix)."""
    prefix = f"lwa-test-{uuid.uuid4().hex}"
    made: list[Store] = []
    memory = MemoryStore()
    redis_url: str | None = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")

    def make() -> Store:
        if redis_url is None:
            return memory
        store = RedisStore(redis_url, key_prefix=prefix)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()
    if redis_url is not None:
        client = aioredis.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=prefix + ":*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_backoff_bucket_waits_after_the_last_attempt_doubling_to_its_cap(
    hosts: StoreFactory,
) -> None:
    """Real time (Redis keeps its own clock): 400 ms, then 800 ms, then still 800 ms."""
    store = hosts()
    bucket = Bucket("t:backoff", parse("2/hour"), uuid.uuid4().hex, Backoff(400, 800))
    assert await store.reserve([bucket], "m1") == Granted(1)
    assert await store.reserve([bucket], "m2") == Granted(0)
    first = await store.reserve([bucket], "m3")
    assert isinstance(first, Full)
    assert 0 < first.wait_ms <= 400
    await asyncio.sleep(0.45)
    assert await store.reserve([bucket], "m3") == Granted(0)  # past the limit: 0 left
    second = await store.reserve([bucket], "m4")
    assert isinstance(second, Full)
    assert 400 < second.wait_ms <= 800
    await asyncio.sleep(0.85)
    assert await store.reserve([bucket], "m4") == Granted(0)
    capped = await store.reserve([bucket], "m5")
    assert isinstance(capped, Full)
    assert 400 < capped.wait_ms <= 800
    peeked = await store.peek([bucket])
    assert peeked is not None
    assert 0 < peeked.wait_ms <= 800


async def test_parallel_attempts_on_a_backoff_bucket_get_the_free_budget_and_no_more(
    hosts: StoreFactory,
) -> None:
    stores = [hosts() for _ in range(3)]
    bucket = Bucket("t:backoff", parse("3/hour"), uuid.uuid4().hex, Backoff(60_000, 60_000))
    outcomes = await asyncio.gather(*(stores[n % 3].reserve([bucket], f"m{n}") for n in range(30)))
    assert sorted(o.left or 0 for o in outcomes if isinstance(o, Granted)) == [0, 1, 2]
    assert sum(isinstance(o, Full) for o in outcomes) == 27


# ---- known devices ---------------------------------------------------------------------------


async def test_a_known_device_signs_in_while_the_accounts_and_the_ips_budgets_are_spent(
    throttles: Factory,
) -> None:
    throttle = throttles(password_limit_per_account="3/day", password_limit_per_device="4/hour")
    ips = addresses()
    for _ in range(3):
        (await throttle.reserve_password("acc_1", next(ips))).failed()
    assert await refused_wait(throttle, "acc_1", next(ips)) > 0  # the account's budget: spent
    for n in range(10):  # IP's budget across accounts (10/15 minutes): spent as well
        (await throttle.reserve_password(f"other_{n}", IP)).failed()
    assert await refused_wait(throttle, "acc_1", IP) > 0
    owner = await throttle.reserve_password("acc_1", IP, device="nonce-owner")
    assert owner.left == 3
    await owner.succeeded()


async def test_wrong_passwords_from_a_known_device_lock_only_that_device(
    throttles: Factory,
) -> None:
    throttle = throttles(password_limit_per_device="4/15minutes;6/day")
    for left in (3, 2, 1, 0):
        assert (await throttle.reserve_password("acc_1", IP, device="nonce-a")).failed() == left
    wait = await refused_wait(throttle, "acc_1", IP, device="nonce-a")
    assert 0 < wait <= 15 * 60
    # Another known device of the account, and the account without one, lost nothing.
    assert (await throttle.reserve_password("acc_1", IP, device="nonce-b")).left == 3
    assert (await throttle.reserve(throttle.password_buckets("acc_1", None))).left == 19
    pair_and_ip = await throttle.reserve(throttle.password_buckets("acc_1", IP)[:2])
    assert pair_and_ip.left == 4  # this IP's 5 for the account: untouched by the device
    # The same nonce for another account is another budget (the proof names the account).
    assert (await throttle.reserve_password("acc_2", IP, device="nonce-a")).left == 3


async def test_parallel_guesses_from_one_known_device_never_exceed_its_budget(
    throttles: Factory,
) -> None:
    hosts = [throttles(password_limit_per_device="10/15minutes") for _ in range(4)]
    results = await asyncio.gather(
        *(hosts[n % 4].reserve_password("acc_1", IP, device="nonce-a") for n in range(40)),
        return_exceptions=True,
    )
    granted = [r for r in results if isinstance(r, PasswordReservation)]
    assert sorted(r.left for r in granted) == list(range(10))
    assert sum(isinstance(r, TooManyAttempts) for r in results) == 30


async def test_a_right_password_from_a_known_device_forgives_its_typos(
    throttles: Factory,
) -> None:
    throttle = throttles(password_limit_per_device="5/15minutes;8/day")
    for _ in range(3):
        (await throttle.reserve_password("acc_1", IP, device="nonce-a")).failed()
    right = await throttle.reserve_password("acc_1", IP, device="nonce-a")
    assert right.left == 1
    await right.succeeded()
    assert (await throttle.reserve_password("acc_1", IP, device="nonce-a")).left == 4


async def test_forgive_account_empties_the_accounts_budget_and_nothing_else(
    throttles: Factory,
) -> None:
    throttle = throttles(password_limit_per_account="3/day", password_limit_per_device="2/hour")
    for _ in range(2):
        (await throttle.reserve_password("acc_1", IP, device="nonce-a")).failed()
    for _ in range(3):
        (await throttle.reserve_password("acc_1", IP)).failed()
    assert await refused_wait(throttle, "acc_1", "203.0.113.1") > 0
    await throttle.forgive_account("acc_1")  # e.g. a password reset proved the owner
    assert (await throttle.reserve_password("acc_1", "203.0.113.1")).left == 2  # 3/day anew
    # This IP's budget for the account (5) and the device's stay spent as they were.
    assert (await throttle.reserve(throttle.password_buckets("acc_1", IP)[:1])).left == 1
    assert await refused_wait(throttle, "acc_1", IP, device="nonce-a") > 0
