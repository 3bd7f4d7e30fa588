"""Where reservations are recorded: a sliding log per bucket, in memory or in Redis.

``MemoryStore``: a dict of sorted entry lists per bucket, every operation synchronous under
one lock, so atomic within the process (one process only: several workers or hosts need
Redis). ``RedisStore``: one sorted set per bucket (member = the reservation's random id,
score = the time in ms) and one Lua script per operation (reserve, release, peek), so each
operation is atomic across every process sharing the Redis; the scripts read Redis's own
clock (``TIME``), so hosts with skewed clocks still share one window, and keys expire with
their window. A bucket with a ``Backoff`` never fills: past its limit each attempt must
wait after the previous one (progressive delays), checked in the same atomic step. One
script touches several keys, so this needs one Redis (or a primary with
replicas), not Redis Cluster. Redis unreachable: ``ServiceUnavailable`` (fail closed),
logged once per outage (``outages.OutageLog``), not once per refused request.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from limits import RateLimitItem
from redis.exceptions import RedisError

from lwa_accounts.errors import ServiceUnavailable, TooManyAttempts
from lwa_accounts.outages import OutageLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Progressive delays instead of a wall: once a bucket holds its limit's amount of
    attempts, the next must come ``first_ms`` after the last one, and each further one
    twice as long after its predecessor, up to ``max_ms``."""

    first_ms: int
    max_ms: int

    def spacing_ms(self, over: int) -> int:
        """The wait after the last attempt when the bucket holds ``over`` attempts more
        than its limit's amount (0: the first delay)."""
        return min(self.max_ms, self.first_ms << min(max(over, 0), 40))


@dataclass(frozen=True, slots=True)
class Bucket:
    """One budget: a rate limit applied to one identifier within one scope; with
    ``backoff``, the limit's amount goes without delay and every attempt after it waits."""

    scope: str
    limit: RateLimitItem
    identifier: str
    backoff: Backoff | None = None

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.identifier}"

    @property
    def window_ms(self) -> int:
        return int(self.limit.get_expiry()) * 1000

    def script_args(self) -> list[int]:
        """The Lua scripts' four numbers for this bucket: limit, window, first and longest
        delay (0, 0: no backoff)."""
        first, longest = (self.backoff.first_ms, self.backoff.max_ms) if self.backoff else (0, 0)
        return [self.limit.amount, self.window_ms, first, longest]


@dataclass(frozen=True, slots=True)
class Granted:
    """A reservation recorded: ``left`` attempts remain after it in the tightest bucket
    (None when there was no bucket)."""

    left: int | None


@dataclass(frozen=True, slots=True)
class Full:
    """Nothing recorded: some bucket has no room for ``wait_ms`` more milliseconds."""

    wait_ms: int


def too_many(full: Full) -> TooManyAttempts:
    return TooManyAttempts(retry_after=max(1, math.ceil(full.wait_ms / 1000)))


class Store(Protocol):
    name: str

    async def reserve(self, buckets: Sequence[Bucket], member: str) -> Granted | Full: ...

    async def release(
        self, buckets: Sequence[Bucket], member: str, clear: Sequence[Bucket]
    ) -> None: ...

    async def peek(self, buckets: Sequence[Bucket]) -> Full | None: ...

    async def aclose(self) -> None: ...


# ---- memory ---------------------------------------------------------------------------------


class MemoryStore:
    """Sliding logs in this process. Every operation runs under one lock without awaiting
    anything in between, so a reservation is atomic against every other task and thread."""

    name = "memory"
    SWEEP_EVERY_MS = 60_000  # drop buckets nobody touches any more (e.g. random logins)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (window_ms, sorted [(time_ms, member)])
        self._logs: dict[str, tuple[int, list[tuple[int, str]]]] = {}
        self._last_sweep = 0

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _live(self, bucket: Bucket, now: int) -> list[tuple[int, str]]:
        """The bucket's entries still inside its window (older ones dropped)."""
        _, entries = self._logs.get(bucket.key, (bucket.window_ms, []))
        cut = bisect.bisect_right(entries, (now - bucket.window_ms, "\U0010ffff"))
        del entries[:cut]
        return entries

    def _wait(self, buckets: Sequence[Bucket], now: int) -> Full | None:
        wait = 0
        for bucket in buckets:
            entries = self._live(bucket, now)
            if bucket.backoff is not None:
                wait = max(wait, _delay_in(entries, bucket, now))
            elif len(entries) >= bucket.limit.amount:
                wait = max(wait, _room_in(entries, bucket, now))
        return Full(wait) if wait else None

    async def reserve(self, buckets: Sequence[Bucket], member: str) -> Granted | Full:
        with self._lock:
            now = self._now()
            self._sweep(now)
            full = self._wait(buckets, now)
            if full is not None:
                return full
            left: int | None = None
            for bucket in buckets:
                entries = self._live(bucket, now)
                bisect.insort(entries, (now, member))
                self._logs[bucket.key] = (bucket.window_ms, entries)
                room = max(0, bucket.limit.amount - len(entries))
                left = room if left is None else min(left, room)
            return Granted(left)

    async def release(
        self, buckets: Sequence[Bucket], member: str, clear: Sequence[Bucket]
    ) -> None:
        with self._lock:
            for bucket in buckets:
                _, entries = self._logs.get(bucket.key, (0, []))
                entries[:] = [entry for entry in entries if entry[1] != member]
            for bucket in clear:
                self._logs.pop(bucket.key, None)

    async def peek(self, buckets: Sequence[Bucket]) -> Full | None:
        with self._lock:
            return self._wait(buckets, self._now())

    def _sweep(self, now: int) -> None:
        if now - self._last_sweep < self.SWEEP_EVERY_MS:
            return
        self._last_sweep = now
        for key, (window, entries) in list(self._logs.items()):
            if not entries or entries[-1][0] <= now - window:
                del self._logs[key]

    async def aclose(self) -> None:
        return None


def _room_in(entries: list[tuple[int, str]], bucket: Bucket, now: int) -> int:
    """Milliseconds until a full bucket has room: when its (count - limit + 1)th oldest
    entry leaves the window."""
    if bucket.limit.amount <= 0:
        return bucket.window_ms
    oldest_blocking = entries[len(entries) - bucket.limit.amount][0]
    return max(1, oldest_blocking + bucket.window_ms - now)


def _delay_in(entries: list[tuple[int, str]], bucket: Bucket, now: int) -> int:
    """Milliseconds until a backoff bucket takes its next attempt (0: now)."""
    assert bucket.backoff is not None
    over = len(entries) - bucket.limit.amount
    if over < 0 or not entries:
        return 0
    return max(0, entries[-1][0] + bucket.backoff.spacing_ms(over) - now)


# ---- Redis ---------------------------------------------------------------------------------

# Shared by the scripts: the wait (ms) before a bucket takes one more attempt, for a key
# already trimmed to its window holding ``count`` entries; 0: room now.
_WAIT = """
local function wait_of(key, count, limit, window, first, longest, now)
  if first > 0 then
    if count < limit or count == 0 then return 0 end
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    local over = math.min(count - limit, 40)
    local spacing = math.min(longest, first * 2 ^ over)
    return math.max(0, tonumber(last[2]) + spacing - now)
  end
  if limit <= 0 then return window end
  if count < limit then return 0 end
  local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  return math.max(tonumber(entry[2]) + window - now, 1)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: the buckets. ARGV: member, then limit, window (ms), first and longest delay (ms;
# 0: none) per bucket. Returns {1, left} (recorded in every bucket) or {0, wait_ms}
# (recorded nowhere).
_RESERVE = (
    _WAIT
    + """
local wait = 0
local left = -1
for i, key in ipairs(KEYS) do
  local at = 4 * i - 2
  local limit, window = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local first, longest = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  wait = math.max(wait, wait_of(key, count, limit, window, first, longest, now))
  local room = math.max(0, limit - count - 1)
  if left < 0 or room < left then left = room end
end
if wait > 0 then return {0, wait} end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[4 * i - 1]))
end
return {1, left}
"""
)

# KEYS: buckets to remove the member from, then buckets to clear. ARGV: member, how many
# of KEYS are of the first kind.
_RELEASE = """
local n = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  if i <= n then
    redis.call('ZREM', key, ARGV[1])
  else
    redis.call('DEL', key)
  end
end
return 0
"""

# KEYS: the buckets. ARGV: limit, window, first and longest delay per bucket. Returns the
# wait in ms (0: room). Trims nothing (a peek writes nothing): counts the live entries.
_PEEK = (
    _WAIT
    + """
local wait = 0
for i, key in ipairs(KEYS) do
  local at = 4 * i - 3
  local limit, window = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local first, longest = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  local since = string.format('(%d', now - window)
  local count = redis.call('ZCOUNT', key, since, '+inf')
  local stale = redis.call('ZCARD', key) - count
  local w = 0
  if first > 0 then
    w = wait_of(key, count, limit, window, first, longest, now)
  elseif limit <= 0 then
    w = window
  elseif count >= limit then
    local entry = redis.call('ZRANGE', key, stale + count - limit, stale + count - limit,
      'WITHSCORES')
    w = math.max(tonumber(entry[2]) + window - now, 1)
  end
  wait = math.max(wait, w)
end
return wait
"""
)


def redis_client_url(redis_url: str) -> str:
    """The URL for redis-py (``limits``' ``async+redis://`` form is accepted too)."""
    return redis_url.removeprefix("async+")


class RedisStore:
    """Sliding logs in Redis sorted sets, one Lua script per operation (atomic across
    every process sharing the Redis)."""

    name = "redis"

    def __init__(self, redis_url: str, *, key_prefix: str) -> None:
        self._prefix = key_prefix + ":"
        self._client = aioredis.Redis.from_url(
            redis_client_url(redis_url), socket_connect_timeout=2, socket_timeout=2
        )
        self._reserve = self._client.register_script(_RESERVE)
        self._release = self._client.register_script(_RELEASE)
        self._peek = self._client.register_script(_PEEK)
        self.outages = OutageLog("Redis (rate limits)", logger)

    def _keys(self, buckets: Sequence[Bucket]) -> list[str]:
        return [self._prefix + bucket.key for bucket in buckets]

    async def reserve(self, buckets: Sequence[Bucket], member: str) -> Granted | Full:
        if not buckets:
            return Granted(None)
        args: list[str | int] = [member]
        for bucket in buckets:
            args += bucket.script_args()
        async with self._guard():
            recorded, value = await self._reserve(keys=self._keys(buckets), args=args)
        return Granted(int(value)) if int(recorded) else Full(int(value))

    async def release(
        self, buckets: Sequence[Bucket], member: str, clear: Sequence[Bucket]
    ) -> None:
        if not buckets and not clear:
            return
        keys = self._keys(buckets) + self._keys(clear)
        async with self._guard():
            await self._release(keys=keys, args=[member, len(buckets)])

    async def peek(self, buckets: Sequence[Bucket]) -> Full | None:
        if not buckets:
            return None
        args: list[int] = []
        for bucket in buckets:
            args += bucket.script_args()
        async with self._guard():
            wait = int(await self._peek(keys=self._keys(buckets), args=args))
        return Full(wait) if wait > 0 else None

    async def aclose(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Redis down: refuse (503, retryable) rather than let password guessing through;
        one warning per outage, not one per refused request."""
        try:
            yield
        except (RedisError, OSError) as error:
            self.outages.failed(error)
            raise ServiceUnavailable() from None
        self.outages.succeeded()
