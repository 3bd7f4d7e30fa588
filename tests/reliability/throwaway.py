"""Throwaway PostgreSQL clusters and Redis servers that a fault test may stop and start.

Never the machine's shared services: each one lives in a fresh temporary directory on a
free loopback port, and is stopped and deleted when the block ends, whatever happened.
As root (CI containers), PostgreSQL runs as the ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.processes import free_port

INITDB_OPTIONS = ("-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
# Loopback only, and nothing on disk: a restart starts empty.
REDIS_OPTIONS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


def _missing(what: str) -> None:
    message = f"{what}: a throwaway instance cannot be started"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and LWA_ACCOUNTS_REQUIRE_SERVICES=1")
    pytest.skip(message)


def _wait_for_port(port: int, *, up: bool, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                listening = True
        except OSError:
            listening = False
        if listening == up:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"port {port} still {'closed' if up else 'open'} after {timeout} s"
            )
        time.sleep(0.05)


def _in_thread(coroutine: Coroutine[object, object, None]) -> None:
    # A thread of its own: the test may already run an event loop in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


# ---- PostgreSQL -----------------------------------------------------------------------------


@dataclass
class ThrowawayPostgres:
    """A private cluster: ``stop()`` kills it as a crash would, ``start()`` brings it back."""

    root: Path
    port: int
    as_postgres: list[str] = field(default_factory=list)
    database: str = "lwa"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, "pg_ctl", "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c max_connections=50"
        )
        self._pg_ctl("-l", str(self.root / "server.log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        """``-m immediate``: no clean shutdown, every connection cut (like a crash)."""
        self._pg_ctl("-m", "immediate", "-w", "stop")
        _wait_for_port(self.port, up=False)

    async def create_database(self) -> None:
        import asyncpg

        admin = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await admin.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await admin.close()

    def running(self) -> bool:
        result = subprocess.run(
            [*self.as_postgres, "pg_ctl", "-D", str(self.data), "status"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return result.returncode == 0


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        _missing("initdb/pg_ctl not on PATH")
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            _missing("running as root without runuser")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    # Not pytest's tmp_path: as root it is private to root, and the postgres user needs in.
    root = Path(tempfile.mkdtemp(prefix="lwa-throwaway-pg-"))
    cluster = ThrowawayPostgres(root=root, port=free_port(), as_postgres=as_postgres)
    try:
        if as_postgres:
            shutil.chown(root, user="postgres")
        subprocess.run(
            [*as_postgres, "initdb", "-D", str(cluster.data), *INITDB_OPTIONS],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        _in_thread(cluster.create_database())
        yield cluster
    finally:
        if cluster.data.exists() and cluster.running():
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


# ---- Redis ------------------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """A ``redis-server`` with nothing on disk: ``kill()`` and ``start()`` on the same port."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), *REDIS_OPTIONS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, up=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        _wait_for_port(self.port, up=False)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        _missing("redis-server not on PATH")
    redis = PrivateRedis(port=free_port())
    try:
        redis.start()
        yield redis
    finally:
        redis.kill()
