"""Brute-force protection over the ``limits`` library (moving windows).

Storage is in-process memory by default and Redis when ``settings.redis_url`` is set, so
several workers and hosts share one budget. The API is generic (``check`` / ``hit`` /
``consume`` over ``Bucket`` values) with named helpers for the cases the flows need:
password attempts per account and per IP (sign-in, re-authentication, the Amazon
"link with your local password" step) and registrations per IP.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from lwa_accounts.errors import ServiceUnavailable, TooManyAttempts
from lwa_accounts.settings import Settings

KEY_PREFIX = "lwa-accounts"

logger = logging.getLogger(__name__)


@asynccontextmanager
async def _storage_guard() -> AsyncIterator[None]:
    """Redis down: refuse (503, retryable) rather than let password guessing through."""
    try:
        yield
    except StorageError as error:
        logger.error("rate-limit storage failed: %s", error.storage_error)
        raise ServiceUnavailable() from None


@dataclass(frozen=True, slots=True)
class Bucket:
    """One budget: a rate limit applied to one identifier within one scope."""

    scope: str
    limit: RateLimitItem
    identifier: str


def redis_storage_uri(redis_url: str) -> str:
    """``limits`` picks its async Redis storage by the ``async+`` scheme prefix."""
    return redis_url if redis_url.startswith("async+") else "async+" + redis_url


class Throttle:
    """Rate limits shared by the flows; see the module docstring."""

    def __init__(self, settings: Settings, *, key_prefix: str = KEY_PREFIX) -> None:
        self._storage: Storage
        if settings.redis_url:
            # implementation="redispy": the `redis` package (coredis is not a dependency).
            self._storage = RedisStorage(
                redis_storage_uri(settings.redis_url),
                implementation="redispy",
                key_prefix=key_prefix,
                wrap_exceptions=True,  # StorageError, mapped to ServiceUnavailable below
                socket_connect_timeout=2,
                socket_timeout=2,
            )
        else:
            self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._password_per_account = parse(settings.password_limit_per_account)
        self._password_per_ip = parse(settings.password_limit_per_ip)
        self._registration_per_ip = parse(settings.registration_limit_per_ip)

    @property
    def storage_name(self) -> str:
        return type(self._storage).__name__

    # ---- buckets for the known cases --------------------------------------------------

    def password_buckets(self, account_key: str, ip: str | None) -> list[Bucket]:
        """Password attempts against one account and from one IP address."""
        buckets = [Bucket("password:account", self._password_per_account, account_key)]
        if ip:
            buckets.append(Bucket("password:ip", self._password_per_ip, ip))
        return buckets

    def registration_buckets(self, ip: str | None) -> list[Bucket]:
        if not ip:
            return []
        return [Bucket("register:ip", self._registration_per_ip, ip)]

    # ---- generic operations -------------------------------------------------------------

    async def check(self, buckets: Sequence[Bucket]) -> None:
        """Raise TooManyAttempts (with retry_after) if any bucket is exhausted. Counts nothing."""
        for bucket in buckets:
            async with _storage_guard():
                allowed = await self._limiter.test(bucket.limit, bucket.scope, bucket.identifier)
            if not allowed:
                raise TooManyAttempts(retry_after=await self.retry_after(bucket))

    async def hit(self, buckets: Sequence[Bucket]) -> int:
        """Count one attempt in every bucket; returns the attempts left in the tightest one."""
        left: int | None = None
        for bucket in buckets:
            async with _storage_guard():
                await self._limiter.hit(bucket.limit, bucket.scope, bucket.identifier)
                stats = await self._limiter.get_window_stats(
                    bucket.limit, bucket.scope, bucket.identifier
                )
            left = stats.remaining if left is None else min(left, stats.remaining)
        return max(left or 0, 0)

    async def consume(self, buckets: Sequence[Bucket]) -> None:
        """Check, then count one attempt: for actions limited whether or not they succeed."""
        await self.check(buckets)
        await self.hit(buckets)

    async def reset(self, buckets: Sequence[Bucket]) -> None:
        for bucket in buckets:
            async with _storage_guard():
                await self._limiter.clear(bucket.limit, bucket.scope, bucket.identifier)

    async def retry_after(self, bucket: Bucket) -> int:
        async with _storage_guard():
            stats = await self._limiter.get_window_stats(
                bucket.limit, bucket.scope, bucket.identifier
            )
        return max(1, math.ceil(stats.reset_time - time.time()))

    # ---- password attempts ----------------------------------------------------------------

    async def guard_password(self, account_key: str, ip: str | None) -> None:
        """Before verifying a password: refuse when the account or the IP is exhausted."""
        await self.check(self.password_buckets(account_key, ip))

    async def password_failed(self, account_key: str, ip: str | None) -> int:
        """After a wrong password: count it; returns attempts left before 429."""
        return await self.hit(self.password_buckets(account_key, ip))

    async def password_succeeded(self, account_key: str) -> None:
        """After a right password the account's budget starts again; the IP's does not,
        so one attacker-owned account cannot reset an IP that is guessing others."""
        await self.reset(self.password_buckets(account_key, None))

    async def aclose(self) -> None:
        if isinstance(self._storage, RedisStorage):
            # The redis-py bridge keeps a connection pool; give its sockets back.
            client = getattr(self._storage.bridge, "storage", None)
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
