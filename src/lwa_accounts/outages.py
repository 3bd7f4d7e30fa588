"""One log line per dependency outage, not one traceback per refused request.

While a dependency (the database, Redis, ...) is down every request that needs it fails
the same way; logging each failure would bury the one fact an operator needs. An
``OutageLog`` warns when the first failure of an outage is seen, reminds at most every
``repeat_seconds`` while it lasts (with the count of refused requests), and logs one info
line when the dependency answers again. Where no success is ever reported (a caller that
only sees failures), ``quiet_seconds`` without a failure end the outage instead. Per
process: N workers log N warnings.
Standard library only; asyncio code calls it from one thread, so it needs no lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REPEAT_SECONDS = 60.0
_MAX_REASON = 200


def describe(error: BaseException) -> str:
    """One short line naming the failure: type and first line of the message, never a
    traceback (and, for SQLAlchemy errors, the driver's error rather than the statement
    and its parameters, which may hold personal data)."""
    shown: BaseException = getattr(error, "orig", None) or error
    message = str(shown).strip().splitlines()[0] if str(shown).strip() else ""
    if len(message) > _MAX_REASON:
        message = message[:_MAX_REASON] + "..."
    name = type(shown).__name__
    return f"{name}: {message}" if message else name


class OutageLog:
    def __init__(
        self,
        name: str,
        logger: logging.Logger,
        *,
        repeat_seconds: float = REPEAT_SECONDS,
        quiet_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._logger = logger
        self._repeat = repeat_seconds
        self._quiet = quiet_seconds
        self._last_failure = 0.0
        self._clock = clock
        self._down_since: float | None = None
        self._last_warning = 0.0
        self._refused = 0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, error: BaseException) -> None:
        """Count one refused request; warn if it starts an outage or a reminder is due."""
        now = self._clock()
        if self._quiet is not None and now - self._last_failure > self._quiet:
            self._down_since = None  # long quiet: that outage ended unseen, this is a new one
            self._refused = 0
        self._last_failure = now
        self._refused += 1
        if self._down_since is None:
            self._down_since = self._last_warning = now
            self._logger.warning(
                "%s unavailable (%s): answering 503 until it is back", self.name, describe(error)
            )
        elif now - self._last_warning >= self._repeat:
            self._last_warning = now
            self._logger.warning(
                "%s still unavailable after %.0f s, %d requests refused so far (%s)",
                self.name,
                now - self._down_since,
                self._refused,
                describe(error),
            )

    def succeeded(self) -> None:
        """The dependency answered: end the outage, if there was one."""
        if self._down_since is None:
            return
        self._logger.info(
            "%s available again after %.1f s, %d requests refused",
            self.name,
            self._clock() - self._down_since,
            self._refused,
        )
        self._down_since = None
        self._refused = 0
