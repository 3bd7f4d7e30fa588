"""Shared pieces of the race tests: the database parameter and outcome counting."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import httpx
import pytest

# How many requests race each other. Enough to interleave on a loaded 2-core machine; the
# assertions count outcomes and never depend on which request wins or how fast.
PARALLEL = 8


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the default: a SQLite file in DATA_DIR
    url: str = request.getfixturevalue("postgres_url")
    return url


def statuses(responses: Iterable[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def describe(responses: Iterable[httpx.Response]) -> list[str]:
    """For assertion messages: every status with the start of its body."""
    return [f"{r.status_code} {r.text[:120]}" for r in responses]
