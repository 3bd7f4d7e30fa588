"""One settings builder for tests: the service as it runs offline, with cheap argon2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lwa_accounts.settings import TEST_SECRET_KEY, Settings

__all__ = ["TEST_DEFAULTS", "TEST_SECRET_KEY", "offline_settings"]

# What every suite shares: the test environment (emulated Amazon, no real network), a
# stable secret key, and argon2 parameters that make a hash take microseconds, not 20 ms.
TEST_DEFAULTS: dict[str, Any] = {
    "env": "test",
    "secret_key": TEST_SECRET_KEY,
    "argon2_memory_kib": 64,
    "argon2_time_cost": 1,
}


def offline_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with their data (the SQLite file) in ``tmp_path``; ``overrides`` win."""
    return Settings(**{**TEST_DEFAULTS, "data_dir": tmp_path, **overrides})
