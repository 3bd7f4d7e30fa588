"""The emulated Amazon's clock and housekeeping.

Time is wall time plus an offset that tests move forward, so expiry is tested without
sleeping. Expired records are forgotten now and then, so a long-running dev server stays
small. Nothing here locks: the callers hold the state's one lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

PRUNE_EVERY = 200


class EmulatorClock:
    """Wall time plus an offset that tests move forward (expiry without sleeping)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Expiring(Protocol):
    expires_at: float


E = TypeVar("E", bound=Expiring)


def unexpired(record: E | None, now: float) -> E | None:
    """The record while it lives; None when it is missing or expired (expiry is inclusive)."""
    if record is None or record.expires_at <= now:
        return None
    return record


class Pruner:
    """Every PRUNE_EVERY new records, drops the expired ones of every watched table."""

    def __init__(self, clock: EmulatorClock) -> None:
        self._clock = clock
        self._prunes: list[Callable[[float], None]] = []
        self._created = 0

    def watch(self, table: dict[str, E], grace: float = 0.0) -> None:
        """Prune `table`, keeping each record `grace` seconds past its expiry."""

        def prune(now: float) -> None:
            for key in [k for k, v in table.items() if v.expires_at + grace <= now]:
                del table[key]

        self._prunes.append(prune)

    def created(self) -> None:
        """Count one new record; prune when enough were created since the last time."""
        self._created += 1
        if self._created < PRUNE_EVERY:
            return
        self._created = 0
        now = self._clock.now()
        for prune in self._prunes:
            prune(now)
