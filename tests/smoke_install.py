"""``make smoke-install``: what the container image does, run on this machine directly.

Build the wheel (``python -m build``, as the Dockerfile's builder stage), install it alone
into a fresh venv (no ``-e``, no test extra: an import of a test-only package at serve time
fails here), then for SQLite (and PostgreSQL when it answers, in a fresh database):
``lwa-accounts db upgrade``, ``lwa-accounts serve --workers 2`` against a standalone
emulated Amazon and Redis, probe ``/ready`` until 200, register, sign in with a password
and with Amazon, SIGTERM, and check the whole process tree exited 0.

Run from the repository root with the test venv's Python: ``python -m tests.smoke_install``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
)

ROOT = Path(__file__).resolve().parent.parent
PROBE = "/ready"  # database, migrations at head, Redis when configured
READY_WITHIN_SECONDS = 90
STOP_WITHIN_SECONDS = 30
TEST_ONLY = ("pytest", "hypothesis", "schemathesis", "playwright", "mypy", "ruff", "authlib")
POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
PASSWORD = "tangerine-elephant-42"


class SmokeFailed(Exception):
    pass


def step(message: str) -> None:
    print(f"smoke-install: {message}", flush=True)


def clean_environment() -> dict[str, str]:
    """This environment without what would let a child see the source tree or our settings
    instead of the installed wheel."""
    hidden = ("PYTHONPATH", "PYTHONHOME", "PROMETHEUS_MULTIPROC_DIR")
    return {
        k: v for k, v in os.environ.items() if k not in hidden and not k.startswith("LWA_ACCOUNTS_")
    }


def run(*command: str | Path, env: Mapping[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        env=dict(env) if env is not None else clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SmokeFailed(
            f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_and_install(work: Path) -> Path:
    """The wheel, installed alone into a fresh venv; returns the venv's bin directory."""
    dist = work / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT)
    (wheel,) = dist.glob("lwa_accounts-*.whl")
    step(f"built {wheel.name}")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel)
    installed = run(venv / "bin" / "python", "-m", "pip", "list", "--format=freeze").lower()
    names = {line.split("==")[0] for line in installed.splitlines()}
    if leaked := sorted(names & set(TEST_ONLY)):
        raise SmokeFailed(f"test-only packages were installed with the wheel: {leaked}")
    step(f"installed into a fresh venv ({len(names)} packages, no test tools)")
    return venv / "bin"


def environment(work: Path, amazon: str, **extra: str) -> dict[str, str]:
    env = clean_environment()
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(work / "var"),
            "LWA_ACCOUNTS_SECRET_KEY": "smoke-install-secret-key-" + uuid.uuid4().hex,
            "LWA_ACCOUNTS_LWA_CLIENT_ID": EMULATED_WEB_CLIENT_ID,
            "LWA_ACCOUNTS_LWA_CLIENT_SECRET": EMULATED_WEB_CLIENT_SECRET,
            "LWA_ACCOUNTS_LWA_DEVICE_CLIENT_ID": EMULATED_DEVICE_CLIENT_ID,
            "LWA_ACCOUNTS_LWA_API_URL": amazon,
            "LWA_ACCOUNTS_LWA_AUTHORIZE_URL": amazon + "/ap/oa",
            "LWA_ACCOUNTS_REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "LWA_ACCOUNTS_REDIS_KEY_PREFIX": "smoke-" + uuid.uuid4().hex[:8],
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


@contextmanager
def started(
    command: list[str], env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        process = subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> float:
    began = time.monotonic()
    while time.monotonic() - began < READY_WITHIN_SECONDS:
        if process.poll() is not None:
            raise SmokeFailed(f"exited early ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SmokeFailed(f"{url} not 200 within {READY_WITHIN_SECONDS} s:\n{log.read_text()}")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def sign_in(base: str, amazon: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        account = {"username": "smoke", "email": "smoke@example.com", "name": "Smoke"}
        created = client.post("/api/v1/accounts", json={**account, "password": PASSWORD})
        if created.status_code != 201:
            raise SmokeFailed(f"registration answered {created.status_code}: {created.text}")
        signed_in = client.post(
            "/api/v1/sessions", json={"username": "smoke", "password": PASSWORD}
        )
        if signed_in.status_code != 201:
            raise SmokeFailed(
                f"password sign-in answered {signed_in.status_code}: {signed_in.text}"
            )
        token = signed_in.json()["session"]["token"]
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        if me.status_code != 200 or me.json()["account"]["username"] != "smoke":
            raise SmokeFailed(f"/api/v1/me answered {me.status_code}: {me.text}")
        minted = httpx.post(
            amazon + "/_emulator/tokens",
            json={
                "user_id": "amzn1.account.GRACEHOPPER0000000000000DEMO",
                "client_id": EMULATED_DEVICE_CLIENT_ID,
            },
            timeout=30,
        )
        amazon_sign_in = client.post(
            "/api/v1/sessions/amazon",
            json={"access_token": minted.json()["access_token"], "device_name": "smoke TV"},
        )
        if amazon_sign_in.status_code != 201:
            raise SmokeFailed(f"Amazon sign-in answered {amazon_sign_in.status_code}")
        for page in ("/signin", "/static/app.css"):  # templates and static files shipped
            if (answer := client.get(page)).status_code != 200:
                raise SmokeFailed(f"{page} answered {answer.status_code}")


def round_trip(name: str, bin_dir: Path, work: Path, amazon: str, **extra: str) -> None:
    began = time.monotonic()
    env = environment(work, amazon, **extra)
    run(bin_dir / "lwa-accounts", "db", "upgrade", env=env, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / f"serve-{name}.log"
    command = [str(bin_dir / "lwa-accounts"), "serve", "--workers", "2", "--port", str(port)]
    with started(command, env, log) as server:
        ready = wait_ready(base + PROBE, server, log)
        workers = [
            pid
            for pid in children(server.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        sign_in(base, amazon)
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=STOP_WITHIN_SECONDS)
        except subprocess.TimeoutExpired:
            raise SmokeFailed(f"not stopped {STOP_WITHIN_SECONDS} s after SIGTERM") from None
        if code != 0:
            raise SmokeFailed(f"serve exited {code} after SIGTERM:\n{log.read_text()}")
        if len(workers) != 2 or any(Path(f"/proc/{pid}").exists() for pid in workers):
            raise SmokeFailed(f"workers {workers}: expected 2, all gone after the stop")
    step(
        f"{name}: migrated, ready in {ready:.1f} s, signed in, stopped with 0 "
        f"({time.monotonic() - began:.1f} s)"
    )


@contextmanager
def postgres_database() -> Iterator[str | None]:
    if not reachable(POSTGRES):
        step("PostgreSQL is not reachable: SQLite only")
        yield None
        return
    import asyncio

    import asyncpg

    name = f"lwa_smoke_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(
            host=POSTGRES[0], port=POSTGRES[1], user="postgres", database="postgres"
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> int:
    began = time.monotonic()
    if not reachable(REDIS):
        step(f"Redis is not reachable on {REDIS[0]}:{REDIS[1]}; serving 2 workers needs it")
        return 1
    with tempfile.TemporaryDirectory(prefix="lwa-smoke-") as temp:
        work = Path(temp)
        try:
            bin_dir = build_and_install(work)
            amazon_port = free_port()
            amazon = f"http://127.0.0.1:{amazon_port}"
            amazon_env = environment(work / "amazon", amazon, LWA_ACCOUNTS_ENV="development")
            command = [
                str(bin_dir / "lwa-accounts"),
                "emulator",
                "serve",
                "--port",
                str(amazon_port),
            ]
            with started(command, amazon_env, work / "amazon.log") as emulator:
                wait_ready(amazon + "/_emulator/clock", emulator, work / "amazon.log")
                sqlite = f"sqlite+aiosqlite:///{work / 'smoke.db'}"
                round_trip(
                    "sqlite",
                    bin_dir,
                    work,
                    amazon,
                    LWA_ACCOUNTS_ENV="development",
                    LWA_ACCOUNTS_DATABASE_URL=sqlite,
                )
                with postgres_database() as postgres_url:
                    if postgres_url is not None:
                        round_trip(
                            "postgresql",
                            bin_dir,
                            work,
                            amazon,
                            # Not production: production refuses the emulated Amazon's
                            # clients and its http URLs (config_check.py), by design.
                            LWA_ACCOUNTS_ENV="development",
                            LWA_ACCOUNTS_DATABASE_URL=postgres_url,
                        )
        except SmokeFailed as failure:
            step(f"FAILED: {failure}")
            return 1
    step(f"passed in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
