"""User agents in a person's words, from a fixed vocabulary only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwa_accounts.core import user_agents
from lwa_accounts.core.user_agents import describe

WORDS = {name for _, name in user_agents._BROWSERS} | {name for _, name in user_agents._SYSTEMS}


@pytest.mark.parametrize(
    ("user_agent", "described"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36",
            "Chrome on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.5 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) Chrome/126.0.0.0 Safari/537.36",
            "Chrome on ChromeOS",
        ),
        ("python-httpx/0.28.1", None),
        ("curl/8.5.0", None),
        ("", None),
        (None, None),
        ("Mozilla/5.0 (Linux) Version/3", "Linux"),  # "Version/" without Safari is no browser
    ],
)
def test_known_browsers_and_systems(user_agent: str | None, described: str | None) -> None:
    assert describe(user_agent) == described


@given(st.text(max_size=600))
def test_only_fixed_words_ever_come_out(user_agent: str) -> None:
    described = describe(user_agent)
    if described is not None:
        assert set(described.split(" on ")) <= WORDS
