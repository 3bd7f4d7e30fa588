"""When to try a message again: exponential backoff with jitter, and when to give up.

After failed attempt ``n`` (1, 2, ...) the wait is ``base * 2**(n-1)``, capped, then
jittered down by up to half (so many messages refused by one outage do not all come back
in the same second). After ``max_attempts`` attempts the message has failed for good.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lwa_accounts.settings import Settings


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float
    # [0, 1): random.random in service; tests pin it.
    jitter: Callable[[], float] = random.random

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.mail_max_attempts,
            base_seconds=settings.mail_retry_base_seconds,
            max_seconds=settings.mail_retry_max_seconds,
        )

    def delay(self, attempts: int) -> timedelta:
        """The wait after ``attempts`` failed attempts (attempts >= 1)."""
        exponent = min(max(attempts - 1, 0), 60)  # no float overflow for large counts
        ceiling = min(self.max_seconds, self.base_seconds * 2.0**exponent)
        return timedelta(seconds=ceiling * (1.0 - self.jitter() / 2))

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None: give up."""
        if attempts >= self.max_attempts:
            return None
        return now + self.delay(attempts)
