"""Environments for a real ``lwa-accounts`` process in production mode."""

from __future__ import annotations

import os
from pathlib import Path

KEY = "k" * 43
CLIENT_ID = "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef"


def clean_env(data_dir: Path, **variables: str) -> dict[str, str]:
    """The test process's environment without any LWA_ACCOUNTS_ setting, plus ``variables``
    (names without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env["LWA_ACCOUNTS_DATA_DIR"] = str(data_dir)
    env.update({f"LWA_ACCOUNTS_{name}": value for name, value in variables.items()})
    return env


def fit_production(data_dir: Path, **variables: str) -> dict[str, str]:
    """Production with nothing to refuse: SQLite by explicit opt-in, a real-looking client."""
    return clean_env(
        data_dir,
        **{
            "ENV": "production",
            "SECRET_KEY": KEY,
            "LWA_CLIENT_ID": CLIENT_ID,
            "LWA_CLIENT_SECRET": "a-real-looking-client-secret",
            "PUBLIC_URL": "https://accounts.example.com",
            "ALLOW_SQLITE_IN_PRODUCTION": "1",
            "LOG_LEVEL": "WARNING",
            # A relay on this host: nothing connects to it unless mail is queued.
            "SMTP_URL": "smtp://127.0.0.1:2525",
            "MAIL_FROM": "no-reply@example.com",
            **variables,
        },
    )
