"""The attack tests' default service: the app over ASGI with its emulated Amazon
(``service.py``). Race tests override ``service`` with one on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.security.service import Service, running, security_settings


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running(security_settings(tmp_path)) as running_service:
        yield running_service
