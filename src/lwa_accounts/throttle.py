"""Brute-force protection: attempts are *reserved* atomically before the work they guard.

An attempt (a password verified with argon2, an account created, a device code issued, a
user code looked up) belongs to one or more ``Bucket`` values (per account, per IP, per
code), each a sliding-log budget of ``limit.amount`` attempts within the limit's window.
``Throttle.reserve`` takes one attempt from *every* bucket or from none: when any bucket
is full it raises ``TooManyAttempts`` with ``retry_after`` (seconds until all of them have
room again) and records nothing. Because the attempt is recorded before the work starts,
N parallel attempts can never get more than the budget through (security.md item 8), on
one process or on many hosts sharing Redis. A reservation is then settled once:

- ``keep()``: it counts (a wrong password, a device code issued, a user code looked up);
- ``give_back()``: its entry leaves every bucket (a registration that failed).

``reserving(buckets, on_error=...)`` is the exception-safe form: an async context manager
that keeps the reservation when the block ends normally and applies ``on_error`` when it
raises (registration gives back on any failure, so the per-IP limit counts accounts
created). Password attempts have a named form, ``reserve_password`` ->
``PasswordReservation``: ``failed()`` keeps it, ``succeeded()`` gives the IP's entry back
and starts the account's budget again (not the IP's, so one attacker-owned account cannot
reset an IP that is guessing others). A password check that raises keeps its attempt: an
unfinished check counts like a wrong one. ``consume`` reserves and keeps at once, for
actions counted whether or not they succeed. ``peek`` refuses early when a bucket is full
but grants nothing; only ``reserve`` lets work through.

Why not the ``limits`` library's moving window (still used to parse the rate strings in
settings): its ``hit`` is atomic for one key only, so it cannot take one attempt from
several buckets at once (or from none), and its Redis window is a list of bare timestamps,
so one reservation's entry cannot be given back. This store is a small sliding log instead:

- memory (no ``redis_url``): a dict of sorted entry lists per bucket, every operation
  synchronous under one lock, so atomic within the process (one process only: several
  workers or hosts need Redis);
- Redis: one sorted set per bucket (member = the reservation's random id, score = the
  time in ms) and one Lua script per operation (reserve, release, peek), so each operation
  is atomic across every process sharing the Redis. The scripts read Redis's own clock
  (``TIME``), so hosts with skewed clocks still share one window. Keys expire with their
  window. One script touches several keys, so this needs one Redis (or a primary with
  replicas), not Redis Cluster.

Redis unreachable or failing: every operation raises ``ServiceUnavailable`` (503,
retryable): the throttle fails closed rather than let guessing through.
"""

from __future__ import annotations

import bisect
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from redis.exceptions import RedisError

from lwa_accounts.errors import ServiceUnavailable, TooManyAttempts
from lwa_accounts.settings import Settings

OnError = Literal["keep", "give_back"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One budget: a rate limit applied to one identifier within one scope."""

    scope: str
    limit: RateLimitItem
    identifier: str

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.identifier}"

    @property
    def window_ms(self) -> int:
        return int(self.limit.get_expiry()) * 1000


@dataclass(frozen=True, slots=True)
class Granted:
    """A reservation recorded: ``left`` attempts remain after it in the tightest bucket
    (None when there was no bucket)."""

    left: int | None


@dataclass(frozen=True, slots=True)
class Full:
    """Nothing recorded: some bucket has no room for ``wait_ms`` more milliseconds."""

    wait_ms: int


def _retry_after(full: Full) -> TooManyAttempts:
    return TooManyAttempts(retry_after=max(1, math.ceil(full.wait_ms / 1000)))


class _Store(Protocol):
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
            if len(entries) >= bucket.limit.amount:
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
                room = bucket.limit.amount - len(entries)
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


# ---- Redis ---------------------------------------------------------------------------------

# KEYS: the buckets. ARGV: member, then limit and window (ms) per bucket.
# Returns {1, left} (recorded in every bucket) or {0, wait_ms} (recorded nowhere).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local left = -1
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if limit <= 0 then
    wait = math.max(wait, window)
  elseif count >= limit then
    local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(entry[2]) + window - now, 1)
  else
    local room = limit - count - 1
    if left < 0 or room < left then left = room end
  end
end
if wait > 0 then return {0, wait} end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return {1, left}
"""

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

# KEYS: the buckets. ARGV: limit and window (ms) per bucket. Returns the wait in ms (0: room).
_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local since = string.format('(%d', now - window)
  local live = redis.call('ZRANGEBYSCORE', key, since, '+inf', 'WITHSCORES')
  local count = #live / 2
  if limit <= 0 then
    wait = math.max(wait, window)
  elseif count >= limit then
    wait = math.max(wait, tonumber(live[2 * (count - limit) + 2]) + window - now, 1)
  end
end
return wait
"""


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

    def _keys(self, buckets: Sequence[Bucket]) -> list[str]:
        return [self._prefix + bucket.key for bucket in buckets]

    async def reserve(self, buckets: Sequence[Bucket], member: str) -> Granted | Full:
        if not buckets:
            return Granted(None)
        args: list[str | int] = [member]
        for bucket in buckets:
            args += [bucket.limit.amount, bucket.window_ms]
        async with _redis_guard():
            recorded, value = await self._reserve(keys=self._keys(buckets), args=args)
        return Granted(int(value)) if int(recorded) else Full(int(value))

    async def release(
        self, buckets: Sequence[Bucket], member: str, clear: Sequence[Bucket]
    ) -> None:
        if not buckets and not clear:
            return
        keys = self._keys(buckets) + self._keys(clear)
        async with _redis_guard():
            await self._release(keys=keys, args=[member, len(buckets)])

    async def peek(self, buckets: Sequence[Bucket]) -> Full | None:
        if not buckets:
            return None
        args: list[int] = []
        for bucket in buckets:
            args += [bucket.limit.amount, bucket.window_ms]
        async with _redis_guard():
            wait = int(await self._peek(keys=self._keys(buckets), args=args))
        return Full(wait) if wait > 0 else None

    async def aclose(self) -> None:
        await self._client.aclose()


@asynccontextmanager
async def _redis_guard() -> AsyncIterator[None]:
    """Redis down: refuse (503, retryable) rather than let password guessing through."""
    try:
        yield
    except (RedisError, OSError) as error:
        logger.warning("rate-limit storage failed: %s", type(error).__name__)
        raise ServiceUnavailable() from None


# ---- reservations -------------------------------------------------------------------------------


class Reservation:
    """One attempt recorded in every bucket of a ``Throttle.reserve``; settle it once."""

    def __init__(
        self, store: _Store, buckets: Sequence[Bucket], member: str, left: int | None
    ) -> None:
        self._store = store
        self._buckets = tuple(buckets)
        self._member = member
        self._left = left
        self._settled = False

    @property
    def left(self) -> int | None:
        """Attempts left after this one in the tightest bucket (None: no bucket)."""
        return self._left

    @property
    def settled(self) -> bool:
        return self._settled

    def keep(self) -> None:
        """The attempt counts (it stays in its buckets until they slide past it)."""
        self._settle()

    async def give_back(self, *, reset: Sequence[Bucket] = ()) -> None:
        """Remove this attempt from every bucket; ``reset`` buckets are emptied as well
        (both in one atomic step)."""
        self._settle()
        await self._store.release(self._buckets, self._member, reset)

    def _settle(self) -> None:
        if self._settled:
            raise RuntimeError("a reservation is kept or given back once")
        self._settled = True


class PasswordReservation:
    """One password attempt against an account (and from an IP), reserved before argon2."""

    def __init__(self, reservation: Reservation, account_bucket: Bucket) -> None:
        self._reservation = reservation
        self._account_bucket = account_bucket

    @property
    def left(self) -> int:
        """Attempts left after this one before 429."""
        return self._reservation.left or 0

    def failed(self) -> int:
        """A wrong password: the attempt counts; returns the attempts left before 429."""
        self._reservation.keep()
        return self.left

    async def succeeded(self) -> None:
        """The right password: give the IP's entry back and start the account's budget
        again (the IP's other entries stay)."""
        await self._reservation.give_back(reset=[self._account_bucket])


async def _give_back_quietly(reservation: Reservation) -> None:
    """While another error propagates: a storage failure keeps the attempt counted (fail
    closed) and must not hide the error that ended the work."""
    try:
        await reservation.give_back()
    except ServiceUnavailable:
        logger.warning("could not give a reservation back; it stays counted")


# ---- the throttle ---------------------------------------------------------------------------


class Throttle:
    """Rate limits shared by the flows; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        key_prefix: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` (seconds) drives the memory store only; Redis uses its own clock."""
        self._store: _Store
        if settings.redis_url:
            prefix = key_prefix if key_prefix is not None else settings.redis_key_prefix
            self._store = RedisStore(settings.redis_url, key_prefix=prefix)
        else:
            self._store = MemoryStore(clock)
        self._password_per_account = parse(settings.password_limit_per_account)
        self._password_per_ip = parse(settings.password_limit_per_ip)
        self._registration_per_ip = parse(settings.registration_limit_per_ip)

    @property
    def storage_name(self) -> str:
        """``memory`` or ``redis``."""
        return self._store.name

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

    async def reserve(self, buckets: Sequence[Bucket]) -> Reservation:
        """Take one attempt from every bucket atomically, or raise TooManyAttempts (with
        ``retry_after``) and take none. Settle the result with ``keep`` or ``give_back``
        (unsettled, it counts), or use ``reserving``."""
        member = secrets.token_hex(12)
        outcome = await self._store.reserve(buckets, member)
        if isinstance(outcome, Full):
            raise _retry_after(outcome)
        return Reservation(self._store, buckets, member, outcome.left)

    @asynccontextmanager
    async def reserving(
        self, buckets: Sequence[Bucket], *, on_error: OnError
    ) -> AsyncIterator[Reservation]:
        """Reserve for the block: kept when it ends normally, ``on_error`` when it raises
        (cancellation included), unless the block settled the reservation itself."""
        reservation = await self.reserve(buckets)
        try:
            yield reservation
        except BaseException:
            if not reservation.settled:
                if on_error == "give_back":
                    await _give_back_quietly(reservation)
                else:
                    reservation.keep()
            raise
        if not reservation.settled:
            reservation.keep()

    async def consume(self, buckets: Sequence[Bucket]) -> int | None:
        """Reserve and keep at once: for actions counted whether or not they succeed.
        Returns the attempts left (None: no bucket)."""
        reservation = await self.reserve(buckets)
        reservation.keep()
        return reservation.left

    async def peek(self, buckets: Sequence[Bucket]) -> None:
        """Raise TooManyAttempts if a bucket is full now. Grants nothing: an early refusal
        only, never a substitute for ``reserve`` before the work."""
        full = await self._store.peek(buckets)
        if full is not None:
            raise _retry_after(full)

    async def reset(self, buckets: Sequence[Bucket]) -> None:
        """Empty the buckets (tests, and an operator lifting a limit)."""
        await self._store.release((), "", buckets)

    # ---- password attempts ----------------------------------------------------------------

    async def reserve_password(self, account_key: str, ip: str | None) -> PasswordReservation:
        """Before verifying a password: take the attempt from the account's and the IP's
        budget, or raise TooManyAttempts."""
        buckets = self.password_buckets(account_key, ip)
        return PasswordReservation(await self.reserve(buckets), buckets[0])

    async def peek_password(self, account_key: str, ip: str | None) -> None:
        """Refuse early (TooManyAttempts) when the account's or the IP's budget is spent."""
        await self.peek(self.password_buckets(account_key, ip))

    async def aclose(self) -> None:
        await self._store.aclose()
