"""The systems under test: ours (``lwa-accounts serve``) and the peers, each started as its
own process group so its CPU (every worker included) can be read from /proc."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import venvs
from benchmarks.pgcluster import Cluster

PEERS_DIR = Path(__file__).resolve().parent / "peers"
EMULATED_WEB_CLIENT_ID = "amzn1.application-oa2-client.devwebclient0000000000000000"
EMULATED_DEVICE_CLIENT_ID = "amzn1.application-oa2-client.devdeviceclient00000000000000"
WIDE = "1000000/minute"  # throttles widened so sign-ins are measured, not 429s


@dataclass
class Target:
    """Where a system runs: its port, the emulator, its database, its worker count."""

    port: int
    emulator_url: str
    workers: int
    database: str  # "postgres" or "sqlite"
    cluster: Cluster | None
    db_name: str
    data_dir: Path


@dataclass(frozen=True)
class Launch:
    command: list[str]
    env: dict[str, str]
    cwd: Path | None = None


@dataclass(frozen=True)
class System:
    name: str
    label: str
    scenarios: frozenset[str]
    launch: Callable[[Target], Launch]
    prepare: Callable[[Target], None] = lambda target: None
    cookie_sessions: bool = False  # the Django peers: the session travels in a cookie
    packages: tuple[str, ...] = field(default_factory=tuple)
    python: Callable[[], Path] = lambda: Path(sys.executable)

    def session_headers(self, token: str) -> dict[str, str]:
        if self.cookie_sessions:
            return {"cookie": f"sessionid={token}"}
        return {"authorization": f"Bearer {token}"}


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LWA_ACCOUNTS_", "BENCH_"))}


@functools.cache
def serve_accepts_workers() -> bool:
    """Whether today's ``lwa-accounts serve`` has ``--workers`` (it is being added)."""
    done = subprocess.run(
        [sys.executable, "-m", "lwa_accounts.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "--workers" in done.stdout


def _ours(target: Target) -> Launch:
    env = _base_env()
    env.update(
        {
            "LWA_ACCOUNTS_ENV": "development",  # migrates the database at start-up
            "LWA_ACCOUNTS_DATA_DIR": str(target.data_dir),
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            # A configured client id: the server talks to the emulator process over HTTP
            # (with none it would mount its own emulator and call it in-process).
            "LWA_ACCOUNTS_LWA_API_URL": target.emulator_url,
            "LWA_ACCOUNTS_LWA_AUTHORIZE_URL": target.emulator_url + "/ap/oa",
            "LWA_ACCOUNTS_LWA_CLIENT_ID": EMULATED_WEB_CLIENT_ID,
            "LWA_ACCOUNTS_LWA_CLIENT_SECRET": "dev-web-client-secret-not-for-production",
            "LWA_ACCOUNTS_LWA_DEVICE_CLIENT_ID": EMULATED_DEVICE_CLIENT_ID,
            "LWA_ACCOUNTS_PUBLIC_URL": f"http://127.0.0.1:{target.port}",
        }
    )
    for name in (
        "PASSWORD_LIMIT_PER_ACCOUNT_IP",
        "PASSWORD_LIMIT_PER_IP",
        "PASSWORD_LIMIT_PER_ACCOUNT",
        "REGISTRATION_LIMIT_PER_IP",
        "DEVICE_START_LIMIT_PER_IP",
        "USER_CODE_LIMIT_PER_IP",
        "USER_CODE_LIMIT_PER_CODE",
    ):
        env[f"LWA_ACCOUNTS_{name}"] = WIDE
    if target.cluster is not None:
        env["LWA_ACCOUNTS_DATABASE_URL"] = target.cluster.url(target.db_name)
    command = [sys.executable, "-m", "lwa_accounts.cli", "serve", "--port", str(target.port)]
    if serve_accepts_workers():
        command += ["--workers", str(target.workers)]
    elif target.workers != 1:
        raise SystemExit("bench: this lwa-accounts serve has no --workers; use --workers 1")
    return Launch(command, env)


def _peer_env(target: Target) -> dict[str, str]:
    if target.cluster is None:
        raise SystemExit("bench: the peers run on PostgreSQL only (--database postgres)")
    env = _base_env()
    env.update(
        {
            "BENCH_EMULATOR_URL": target.emulator_url,
            "BENCH_CLIENT_ID": EMULATED_WEB_CLIENT_ID,
            "BENCH_DB_NAME": target.db_name,
            "BENCH_DB_PORT": str(target.cluster.port),
            "PYTHONPATH": str(PEERS_DIR),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def _django(site: str, venv: str) -> tuple[Callable[[Target], Launch], Callable[[Target], None]]:
    def launch(target: Target) -> Launch:
        env = _peer_env(target) | {"DJANGO_SETTINGS_MODULE": f"{site}.settings"}
        command = [
            str(venvs.python_for(venv)),
            "-m",
            "gunicorn",
            f"{site}.wsgi:application",
            "--bind",
            f"127.0.0.1:{target.port}",
            "--workers",
            str(target.workers),
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--log-level",
            "warning",
        ]
        return Launch(command, env, PEERS_DIR)

    def prepare(target: Target) -> None:
        env = _peer_env(target) | {"DJANGO_SETTINGS_MODULE": f"{site}.settings"}
        subprocess.run(  # noqa: S603
            [str(venvs.python_for(venv)), "-m", "django", "migrate", "--noinput", "-v", "0"],
            env=env,
            cwd=PEERS_DIR,
            check=True,
        )

    return launch, prepare


def _floor(target: Target) -> Launch:
    command = [
        str(venvs.python_for("floor")),
        "-m",
        "uvicorn",
        "floor_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(target.port),
        "--http",
        "h11",
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(target.workers),
    ]
    env = _peer_env(target) | {
        "BENCH_CLIENT_ID": f"{EMULATED_WEB_CLIENT_ID},{EMULATED_DEVICE_CLIENT_ID}"
    }
    return Launch(command, env, PEERS_DIR)


PEER_SCENARIOS = frozenset(
    {"returning_amazon", "first_amazon", "session_check", "amazon_latency_50ms"}
)
OURS_SCENARIOS = frozenset(
    {
        "returning_amazon",
        "first_amazon",
        "session_check",
        "password_sign_in",
        "link_by_password",
        "device_authorize_poll",
        "sign_out",
        "invalid_token",
        "amazon_latency_50ms",
        "amazon_failing",
    }
)

_allauth_launch, _allauth_prepare = _django("allauth_site", "allauth")
_social_launch, _social_prepare = _django("social_site", "social")

SYSTEMS: dict[str, System] = {
    "ours": System("ours", "ours", OURS_SCENARIOS, _ours, packages=("lwa-accounts",)),
    "allauth": System(
        "allauth",
        "django-allauth",
        PEER_SCENARIOS,
        _allauth_launch,
        _allauth_prepare,
        cookie_sessions=True,
        packages=("django", "django-allauth", "gunicorn", "psycopg"),
        python=lambda: venvs.python_for("allauth"),
    ),
    "social": System(
        "social",
        "social-auth",
        PEER_SCENARIOS,
        _social_launch,
        _social_prepare,
        cookie_sessions=True,
        packages=("django", "social-auth-app-django", "social-auth-core", "gunicorn", "psycopg"),
        python=lambda: venvs.python_for("social"),
    ),
    "floor": System(
        "floor",
        "bare floor",
        PEER_SCENARIOS,
        _floor,
        packages=("starlette", "httpx", "asyncpg", "uvicorn"),
        python=lambda: venvs.python_for("floor"),
    ),
}
