"""How long to wait, in words: "Too many attempts. Try again in 4 minutes."

Every refusal that carries ``Retry-After`` says the same wait in words (``errors.py``
``TooManyAttempts``), so pages and the JSON API tell a person when to come back. Rounded
*up* at the unit shown, never down: "try again in 4 minutes" must not be too early.
"""

from __future__ import annotations

import math

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


def _count(amount: int, unit: str) -> str:
    return f"{amount} {unit}" if amount == 1 else f"{amount} {unit}s"


def _two(big: int, big_unit: str, small: int, small_unit: str) -> str:
    words = _count(big, big_unit)
    return f"{words} and {_count(small, small_unit)}" if small else words


def wait_in_words(seconds: float) -> str:
    """``seconds`` as a person would say it: "30 seconds", "4 minutes", "1 hour and 5
    minutes", "2 days and 3 hours". Less than a second is "1 second"."""
    whole = max(1, math.ceil(seconds))
    if whole < _MINUTE:
        return _count(whole, "second")
    minutes = math.ceil(whole / _MINUTE)
    if minutes < _HOUR // _MINUTE:
        return _count(minutes, "minute")
    if minutes < _DAY // _MINUTE:
        return _two(minutes // 60, "hour", minutes % 60, "minute")
    hours = math.ceil(whole / _HOUR)
    return _two(hours // 24, "day", hours % 24, "hour")


def try_again_in(seconds: float) -> str:
    """The one sentence of a refusal with a wait."""
    return f"Too many attempts. Try again in {wait_in_words(seconds)}."
