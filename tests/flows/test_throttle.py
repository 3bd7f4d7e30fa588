"""The throttle over `limits`: memory by default, Redis when REDIS_URL is set."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from lwa_accounts.errors import ServiceUnavailable, TooManyAttempts
from lwa_accounts.throttle import Throttle, redis_storage_uri
from tests.flows.conftest import fast_settings


def test_redis_url_gets_the_async_scheme() -> None:
    assert redis_storage_uri("redis://127.0.0.1:6379/0") == "async+redis://127.0.0.1:6379/0"
    assert redis_storage_uri("rediss://h:1/2") == "async+rediss://h:1/2"
    assert redis_storage_uri("async+redis://h") == "async+redis://h"


async def exercise(throttle: Throttle, account: str) -> None:
    for expected_left in (2, 1, 0):
        await throttle.guard_password(account, "192.0.2.1")
        assert await throttle.password_failed(account, "192.0.2.1") == expected_left
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.guard_password(account, "192.0.2.1")
    assert caught.value.retry_after is not None
    assert 1 <= caught.value.retry_after <= 15 * 60
    # Another account from the same IP is still fine (IP budget is 10).
    await throttle.guard_password(account + "-other", "192.0.2.1")
    await throttle.password_succeeded(account)
    await throttle.guard_password(account, "192.0.2.1")


async def test_memory_storage(tmp_path: Path) -> None:
    throttle = Throttle(fast_settings(tmp_path))
    assert throttle.storage_name == "MemoryStorage"
    await exercise(throttle, "acc_1")


async def test_ip_budget_spans_accounts(tmp_path: Path) -> None:
    throttle = Throttle(fast_settings(tmp_path, password_limit_per_ip="4/minute"))
    for n in range(4):
        await throttle.password_failed(f"acc_{n}", "203.0.113.9")
    with pytest.raises(TooManyAttempts):
        await throttle.guard_password("acc_new", "203.0.113.9")
    await throttle.guard_password("acc_new", "203.0.113.10")
    # Success on one account does not give the IP its budget back.
    await throttle.password_succeeded("acc_0")
    with pytest.raises(TooManyAttempts):
        await throttle.guard_password("acc_0", "203.0.113.9")


@pytest.mark.redis
async def test_redis_storage_is_shared_between_instances(tmp_path: Path, redis_url: str) -> None:
    settings = fast_settings(tmp_path, redis_url=redis_url)
    prefix = f"lwa-test-{uuid.uuid4().hex}"
    first, second = Throttle(settings, key_prefix=prefix), Throttle(settings, key_prefix=prefix)
    try:
        assert first.storage_name == "RedisStorage"
        await exercise(first, "acc_r")
        # Two workers (or hosts) share one budget.
        for _ in range(3):
            await first.password_failed("acc_shared", None)
        with pytest.raises(TooManyAttempts):
            await second.guard_password("acc_shared", None)
    finally:
        await first.reset(first.password_buckets("acc_r", "192.0.2.1"))
        await first.reset(first.password_buckets("acc_shared", None))
        await first.aclose()
        await second.aclose()


async def test_unreachable_redis_fails_closed_with_503(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    throttle = Throttle(fast_settings(tmp_path, redis_url="redis://127.0.0.1:1/0"))
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            await throttle.guard_password("acc_x", "192.0.2.1")
        assert caught.value.status == 503
        assert caught.value.retry_after
        with pytest.raises(ServiceUnavailable):
            await throttle.password_failed("acc_x", "192.0.2.1")
    finally:
        await throttle.aclose()
