"""Shared pieces of the race tests: the database parameter, the service on it (a race
module imports both fixtures, overriding conftest's ``service``) and outcome counting."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import httpx
import pytest

from tests.security.service import RACE_LIMITS, Service, running, security_settings

# How many requests race each other. Enough to interleave on a loaded 2-core machine; the
# assertions count outcomes and never depend on which request wins or how fast.
PARALLEL = 8


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the default: a SQLite file in DATA_DIR
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def service(tmp_path: Path, database_url: str | None) -> AsyncIterator[Service]:
    """The app on SQLite or PostgreSQL, limits raised so the throttle decides no race."""
    settings = security_settings(tmp_path, database_url=database_url, **RACE_LIMITS)
    async with running(settings) as running_service:
        yield running_service


def statuses(responses: Iterable[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def describe(responses: Iterable[httpx.Response]) -> list[str]:
    """For assertion messages: every status with the start of its body."""
    return [f"{r.status_code} {r.text[:120]}" for r in responses]
