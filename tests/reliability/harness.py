"""What the fault tests share: a real server's environment and the shape of a 503."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.processes import CLI, free_port, running_server

PASSWORD = "tangerine-elephant-42"
PROBLEM_JSON = "application/problem+json"


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a `lwa-accounts serve` under test: cheap argon2, limits out of
    the way of load tests (every client is 127.0.0.1), plus ``settings`` (names without
    the ``LWA_ACCOUNTS_`` prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_SECRET_KEY": "reliability-test-secret-key-0123456789",
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            "LWA_ACCOUNTS_REGISTRATION_LIMIT_PER_IP": "100000/hour",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_IP": "100000/hour",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT": "1000/hour",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT_IP": "1000/hour",
        }
    )
    env.update({f"LWA_ACCOUNTS_{name.upper()}": value for name, value in settings.items()})
    return env


@contextmanager
def serving(
    tmp_path: Path, env: dict[str, str], *, port: int | None = None
) -> Iterator[tuple[str, Path]]:
    """A real server on ``port`` (default: a free one): (base URL, its log file)."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        ready_url=base + "/health",
        log=log,
    ):
        yield base, log


def problem_of_503(response: httpx.Response, code: str = "service_unavailable") -> str | None:
    """None if ``response`` is the 503 a dependency outage must give, else what is wrong."""
    if response.status_code != 503:
        return f"status {response.status_code}: {response.text[:300]}"
    retry_after = response.headers.get("retry-after", "")
    if not retry_after.isdigit() or int(retry_after) <= 0:
        return f"Retry-After is {retry_after!r}"
    if response.request.url.path.startswith("/api/"):
        if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
            return f"content-type {response.headers.get('content-type')!r}"
        if response.json().get("code") != code:
            return f"code {response.json().get('code')!r}"
    elif "Traceback" in response.text or not response.headers.get("content-type", "").startswith(
        "text/html"
    ):
        return "not the friendly HTML error page"
    return None


def tracebacks(log: Path) -> int:
    return len(re.findall(r"Traceback \(most recent call last\)", log.read_text()))
