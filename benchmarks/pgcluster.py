"""A PostgreSQL cluster of the benchmark's own, on a free loopback port.

Why not the shared server on :5432: other engineers' tests run there, so its backends,
its counters and its CPU would mix with ours. This cluster has ``pg_stat_statements``
preloaded (statements per operation for every system, whatever its driver), and all of
its processes descend from one postmaster, so the CPU of every backend, including the
ones that came and went during a window, is the postmaster's tree plus what it reaped.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks import procstat

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"  # the server refuses to run as root


def find_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if not candidates:
        raise SystemExit("benchmarks: no PostgreSQL server binaries under /usr/lib/postgresql")
    return candidates[0].parent


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *args]


@dataclass
class Cluster:
    port: int
    data: Path
    bin: Path
    postmaster: int = 0

    @classmethod
    def create(cls, port: int) -> Cluster:
        root = Path(tempfile.mkdtemp(prefix="lwa-bench-pg-"))
        shutil.chown(root, RUN_AS)
        data = root / "data"
        pg = find_bin()
        subprocess.run(  # noqa: S603
            _as_postgres(
                [str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{root}'",
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "top",  # what the application sends, not FK checks
            "pg_stat_statements.max": "5000",
            "pg_stat_statements.track_utility": "on",  # BEGIN/COMMIT are round trips too
            "max_connections": "200",
            "shared_buffers": "256MB",
            "fsync": "on",
            "synchronous_commit": "on",
            "log_min_messages": "warning",
        }
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        return cls(port=port, data=data, bin=pg)

    def start(self) -> None:
        subprocess.run(  # noqa: S603
            _as_postgres(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-w",
                    "-l",
                    str(self.data.parent / "log"),
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        asyncio.run(self.execute("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))

    def stop(self) -> None:
        subprocess.run(  # noqa: S603
            _as_postgres(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.data.parent, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    async def connect(self, database: str) -> asyncpg.Connection:
        return await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database=database
        )

    async def execute(self, database: str, sql: str, *args: Any) -> None:
        connection = await self.connect(database)
        try:
            await connection.execute(sql, *args)
        finally:
            await connection.close()

    async def fetch(self, database: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        connection = await self.connect(database)
        try:
            rows: list[asyncpg.Record] = await connection.fetch(sql, *args)
            return rows
        finally:
            await connection.close()

    def create_database(self, name: str) -> None:
        asyncio.run(self.execute("postgres", f'CREATE DATABASE "{name}"'))

    # ---- readings ----------------------------------------------------------------------------

    def cpu_ms(self) -> float:
        """CPU of the whole cluster so far: every live process in the postmaster's tree plus
        what the postmaster reaped from backends that exited."""
        stats = procstat.tree(procstat.all_stats(), self.postmaster)
        return sum(procstat.cpu_ms(stats, self.postmaster).values())

    def counters(self, database: str) -> dict[str, Any]:
        """Sessions opened (pg_stat_database.sessions, PG 14+) and statements executed
        (pg_stat_statements, per query) for ``database``; read between windows only."""

        async def read() -> dict[str, Any]:
            connection = await self.connect("postgres")
            try:
                sessions = await connection.fetchval(
                    "SELECT sessions FROM pg_stat_database WHERE datname = $1", database
                )
                rows = await connection.fetch(
                    "SELECT s.queryid, s.query, s.calls FROM pg_stat_statements s"
                    " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1",
                    database,
                )
            finally:
                await connection.close()
            return {
                "sessions": int(sessions or 0),
                "statements": {str(r["queryid"]): (r["query"], int(r["calls"])) for r in rows},
            }

        return asyncio.run(read())

    def backend_pids(self, database: str) -> list[int]:
        rows = asyncio.run(
            self.fetch("postgres", "SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
        )
        return [int(r["pid"]) for r in rows]


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statement_delta(before: dict[str, Any], after: dict[str, Any], ops: int) -> dict[str, Any]:
    """Statements per operation between two ``counters`` readings, with and without
    transaction control, and the busiest statements."""
    calls: list[tuple[str, int]] = []
    for key, (query, count) in after["statements"].items():
        old = before["statements"].get(key, ("", 0))[1]
        if count > old:
            calls.append((query, count - old))
    total = sum(c for _, c in calls)
    control = sum(c for q, c in calls if q.strip().upper().startswith(TRANSACTION_CONTROL))
    calls.sort(key=lambda item: -item[1])
    per = (lambda n: round(n / ops, 2)) if ops else (lambda n: None)
    return {
        "statements_per_op": per(total),
        "statements_per_op_without_transaction_control": per(total - control),
        "top": [{"query": q[:300], "per_op": per(c)} for q, c in calls[:12]],
        "new_db_connections": after["sessions"] - before["sessions"],
    }


def wait_until_ready(cluster: Cluster, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(cluster.execute("postgres", "SELECT 1"))
            return
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
