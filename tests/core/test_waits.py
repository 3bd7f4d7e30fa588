"""core/waits.py: the wait of a refusal in words, rounded up at the unit shown."""

from __future__ import annotations

import pytest

from lwa_accounts.core.waits import try_again_in, wait_in_words
from lwa_accounts.errors import TooManyAttempts


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "1 second"),
        (0.2, "1 second"),
        (1, "1 second"),
        (2, "2 seconds"),
        (59, "59 seconds"),
        (59.5, "1 minute"),
        (60, "1 minute"),
        (61, "2 minutes"),  # never "1 minute" when it is more: the person would come too early
        (179, "3 minutes"),
        (240, "4 minutes"),
        (899, "15 minutes"),
        (3599, "1 hour"),
        (3600, "1 hour"),
        (3601, "1 hour and 1 minute"),
        (3660, "1 hour and 1 minute"),
        (7200, "2 hours"),
        (7260, "2 hours and 1 minute"),
        (86340, "23 hours and 59 minutes"),
        (86399, "1 day"),
        (86400, "1 day"),
        (86401, "1 day and 1 hour"),
        (2 * 86400 + 3 * 3600, "2 days and 3 hours"),
        (3 * 86400, "3 days"),
    ],
)
def test_wait_in_words(seconds: float, words: str) -> None:
    assert wait_in_words(seconds) == words


def test_the_sentence() -> None:
    assert try_again_in(240) == "Too many attempts. Try again in 4 minutes."
    assert try_again_in(1) == "Too many attempts. Try again in 1 second."


def test_too_many_attempts_says_the_wait_and_carries_it() -> None:
    error = TooManyAttempts(retry_after=61)
    assert error.detail == "Too many attempts. Try again in 2 minutes."
    assert error.extra["retry_after"] == 61
    bare = TooManyAttempts()
    assert bare.detail == TooManyAttempts.default_detail
    assert "retry_after" not in bare.extra
