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
unfinished check counts like a wrong one.

Password buckets, so that no one can lock an account's owner out (security.md item 8):
per (account, IP) tight; per IP across accounts; per account from every IP a free budget
then progressive delays (a ``Backoff`` bucket never fills: each attempt past the budget
waits after the previous one, doubling up to a maximum, so the wait is bounded and said
in ``retry_after``); and a known device (``device=``: a browser or API client whose
signed proof says it signed in to this account before, ``flows/known_devices.py``) uses
only its own tiers instead, so a botnet spending the account's budget leaves it alone.
``forgive_account`` empties the account's budget (a password reset proved the owner).

``consume`` reserves and keeps at once, for actions counted whether or not they succeed.
``peek`` refuses early when a bucket is full but grants nothing; only ``reserve`` lets
work through.

Why not the ``limits`` library's moving window (still used to parse the rate strings in
settings): its ``hit`` is atomic for one key only, so it cannot take one attempt from
several buckets at once (or from none), and its Redis window is a list of bare timestamps,
so one reservation's entry cannot be given back. ``stores.py`` keeps a small sliding log
instead, in memory (one process) or in Redis (one Lua script per operation, atomic across
every process sharing it).

Redis unreachable or failing: every operation raises ``ServiceUnavailable`` (503,
retryable): the throttle fails closed rather than let guessing through, with one warning
per outage.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

from limits import parse, parse_many

from lwa_accounts.core.email_codes import MAX_WRONG_CODES
from lwa_accounts.errors import ServiceUnavailable, TooManyAttempts
from lwa_accounts.settings import Settings
from lwa_accounts.throttle.stores import (
    Backoff,
    Bucket,
    Full,
    MemoryStore,
    RedisStore,
    Store,
    redis_client_url,
    too_many,
)

__all__ = [
    "Backoff",
    "Bucket",
    "PasswordReservation",
    "Reservation",
    "Throttle",
    "redis_client_url",
]

OnError = Literal["keep", "give_back"]

logger = logging.getLogger(__name__)


# ---- reservations -------------------------------------------------------------------------------


class Reservation:
    """One attempt recorded in every bucket of a ``Throttle.reserve``; settle it once."""

    def __init__(
        self, store: Store, buckets: Sequence[Bucket], member: str, left: int | None
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

    def __init__(self, reservation: Reservation, reset_on_success: Sequence[Bucket]) -> None:
        self._reservation = reservation
        self._reset_on_success = tuple(reset_on_success)

    @property
    def left(self) -> int:
        """Attempts left after this one before 429."""
        return self._reservation.left or 0

    def failed(self) -> int:
        """A wrong password: the attempt counts; returns the attempts left before 429."""
        self._reservation.keep()
        return self.left

    async def succeeded(self) -> None:
        """The right password: give this attempt back everywhere and forgive the earlier
        failures from this IP against this account (typos). Failures from other IPs and
        this IP's against other accounts stay: a guesser cannot launder them by signing in
        to an account of their own."""
        await self._reservation.give_back(reset=self._reset_on_success)


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
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        """``clock`` (seconds) drives the memory store only; Redis uses its own clock.
        ``on_refused`` hears the kind of each refused attempt (``password``, ``register``,
        ``user_code``, ``device_start``: the scope before the first colon); metrics count it."""
        self._on_refused = on_refused
        self._store: Store
        if settings.redis_url:
            prefix = key_prefix if key_prefix is not None else settings.redis_key_prefix
            self._store = RedisStore(settings.redis_url, key_prefix=prefix)
        else:
            self._store = MemoryStore(clock)
        self._password_per_account_ip = parse(settings.password_limit_per_account_ip)
        self._password_per_ip = parse(settings.password_limit_per_ip)
        self._password_per_account = parse(settings.password_limit_per_account)
        self._password_delays = Backoff(
            first_ms=settings.password_delay_first_seconds * 1000,
            max_ms=settings.password_delay_max_seconds * 1000,
        )
        self._password_per_device = parse_many(settings.password_limit_per_device)
        self._registration_per_ip = parse(settings.registration_limit_per_ip)
        self._user_code_per_ip = parse(settings.user_code_limit_per_ip)
        self._user_code_per_code = parse(settings.user_code_limit_per_code)
        self._device_start_per_ip = parse(settings.device_start_limit_per_ip)
        self._email_per_account = parse(settings.email_limit_per_account)
        self._email_per_ip = parse(settings.email_limit_per_ip)
        # Outlives every code's lifetime; the code's own row also records each guess.
        self._email_code_guesses = parse(f"{MAX_WRONG_CODES}/day")

    @property
    def storage_name(self) -> str:
        """``memory`` or ``redis``."""
        return self._store.name

    # ---- buckets for the known cases --------------------------------------------------

    def password_buckets(
        self, account_key: str, ip: str | None, *, device: str | None = None
    ) -> list[Bucket]:
        """Password attempts against one account. From a known device (``device``: the
        nonce of its proof, already checked to be for this account): that device's own
        tiers, nothing else. Otherwise: from this IP (first: the bucket a right password
        empties), from this IP against any account, and from every IP (a free budget, then
        progressive delays: ``Backoff``)."""
        if device is not None:
            return [
                Bucket(f"password:device:{tier}", limit, f"{account_key}/{device}")
                for tier, limit in enumerate(self._password_per_device)
            ]
        buckets = [
            Bucket(
                "password:account", self._password_per_account, account_key, self._password_delays
            )
        ]
        if ip:
            pair = Bucket(
                "password:account-ip", self._password_per_account_ip, f"{account_key}@{ip}"
            )
            buckets = [pair, Bucket("password:ip", self._password_per_ip, ip), *buckets]
        return buckets

    def registration_buckets(self, ip: str | None) -> list[Bucket]:
        if not ip:
            return []
        return [Bucket("register:ip", self._registration_per_ip, ip)]

    def user_code_buckets(self, code: str | None, ip: str | None) -> list[Bucket]:
        """User-code entry on /activate: per IP and per code (security.md item 15)."""
        buckets = []
        if ip:
            buckets.append(Bucket("user_code:ip", self._user_code_per_ip, ip))
        if code:
            buckets.append(Bucket("user_code:code", self._user_code_per_code, code))
        return buckets

    def device_start_buckets(self, ip: str | None) -> list[Bucket]:
        return [Bucket("device_start:ip", self._device_start_per_ip, ip)] if ip else []

    def email_buckets(self, account_key: str, ip: str | None) -> list[Bucket]:
        """Mail sent on request: per recipient account (no inbox flooding) and per IP."""
        buckets = [Bucket("email:account", self._email_per_account, account_key)]
        if ip:
            buckets.append(Bucket("email:ip", self._email_per_ip, ip))
        return buckets

    # ---- generic operations -------------------------------------------------------------

    async def reserve(self, buckets: Sequence[Bucket]) -> Reservation:
        """Take one attempt from every bucket atomically, or raise TooManyAttempts (with
        ``retry_after``) and take none. Settle the result with ``keep`` or ``give_back``
        (unsettled, it counts), or use ``reserving``."""
        member = secrets.token_hex(12)
        outcome = await self._store.reserve(buckets, member)
        if isinstance(outcome, Full):
            raise self._refused(buckets, outcome)
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
            raise self._refused(buckets, full)

    def _refused(self, buckets: Sequence[Bucket], full: Full) -> TooManyAttempts:
        if self._on_refused is not None and buckets:
            self._on_refused(buckets[0].scope.partition(":")[0])
        return too_many(full)

    async def reset(self, buckets: Sequence[Bucket]) -> None:
        """Empty the buckets (tests, and an operator lifting a limit)."""
        await self._store.release((), "", buckets)

    # ---- password attempts ----------------------------------------------------------------

    async def reserve_password(
        self, account_key: str, ip: str | None, *, device: str | None = None
    ) -> PasswordReservation:
        """Before verifying a password: take the attempt from the account's and the IP's
        budget (or the known device's), or raise TooManyAttempts."""
        buckets = self.password_buckets(account_key, ip, device=device)
        # A right password forgives the typos of the bucket it came through: the known
        # device's, or this IP's against this account (never the IP's or the account's).
        forgiven = buckets if device is not None else buckets[:1] if ip else []
        return PasswordReservation(await self.reserve(buckets), forgiven)

    async def peek_password(
        self, account_key: str, ip: str | None, *, device: str | None = None
    ) -> None:
        """Refuse early (TooManyAttempts) when the budget the attempt would be taken from
        is spent."""
        await self.peek(self.password_buckets(account_key, ip, device=device))

    async def forgive_account(self, account_key: str, ip: str | None = None) -> None:
        """Empty the account's budget from every IP (its progressive delays), and from
        ``ip`` (the resetting person's own typos), when the owner proved the account another
        way (a password reset). The per-IP and device budgets stay: whoever was guessing
        from an address is still slowed there."""
        buckets = [Bucket("password:account", self._password_per_account, account_key)]
        if ip:
            buckets.append(self.password_buckets(account_key, ip)[0])  # the (account, ip) pair
        await self.reset(buckets)

    # ---- the other named attempts (what flows call: they never see buckets) --------------

    def reserving_registration(self, ip: str | None) -> AbstractAsyncContextManager[Reservation]:
        """One registration from the IP's budget for the block: kept when it ends normally,
        given back when it raises, so the limit counts accounts actually created."""
        return self.reserving(self.registration_buckets(ip), on_error="give_back")

    async def count_user_code(self, code: str | None, ip: str | None) -> None:
        """A user-code lookup, counted whether or not it finds a code (TooManyAttempts)."""
        await self.consume(self.user_code_buckets(code, ip))

    async def count_device_start(self, ip: str | None) -> None:
        """An anonymous device sign-in start, counted whether or not it succeeds."""
        await self.consume(self.device_start_buckets(ip))

    async def count_email(self, account_key: str, ip: str | None) -> None:
        """One e-mail sent on request, counted before it is queued (TooManyAttempts)."""
        await self.consume(self.email_buckets(account_key, ip))

    async def reserve_email_code(self, code_id: str) -> PasswordReservation:
        """One guess at an e-mailed code, before comparing it (TooManyAttempts when the
        code's guesses are spent)."""
        bucket = Bucket("email_code:code", self._email_code_guesses, code_id)
        return PasswordReservation(await self.reserve([bucket]), ())

    async def aclose(self) -> None:
        await self._store.aclose()
