"""Server CPU per operation, sequential, one `lwa-accounts serve` process (issue 11 item 3).

Runs a standalone emulated Amazon and one server (real HTTP over loopback, keep-alive),
warms each scenario up, then sends N sequential requests and reads the CPU the server
process (utime + stime from /proc) and, on PostgreSQL, its backends used meanwhile.
Tokens and customers are made before the timed part (their cost is the emulator's).

    .venv/bin/python benchmarks/perf/measure.py --db sqlite -n 400
    .venv/bin/python benchmarks/perf/measure.py --db postgres -n 400 --rounds 3

Prints one JSON object per round and a median line per scenario: server ms/op (+ PG ms/op).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID as DEVICE
from lwa_accounts.settings import EMULATED_WEB_CLIENT_ID as WEB
from lwa_accounts.settings import EMULATED_WEB_CLIENT_SECRET as WEB_SECRET

TICK = os.sysconf("SC_CLK_TCK")

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def void(_: object) -> None:
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


@contextmanager
def process(command: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[int]:
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{command[2:4]} exited:\n{log.read_text()}")
            try:
                if httpx.get(ready, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def admin_sql(sql: str) -> list[str]:
    # Our own fixed command line; psql from PATH, as an operator would run it.
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atc", sql]
    out = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return [line for line in out.stdout.splitlines() if line]


def backend_pids(database: str) -> set[int]:
    # The name is ours (lwa_perf_<hex>), never input.
    rows = admin_sql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'")  # noqa: S608
    return {int(r) for r in rows}


class Meter:
    def __init__(self, server_pid: int, database: str | None) -> None:
        self.server_pid, self.database = server_pid, database

    def snapshot(self) -> tuple[float, dict[int, float]]:
        backends: dict[int, float] = {}
        if self.database:
            for pid in backend_pids(self.database):
                with contextlib.suppress(FileNotFoundError):  # the backend just exited
                    backends[pid] = cpu_seconds(pid)
        return cpu_seconds(self.server_pid), backends

    def measure(self, n: int, op: Callable[[int], None]) -> dict[str, float]:
        before_server, before_pg = self.snapshot()
        wall = time.perf_counter()
        for i in range(n):
            op(i)
        wall = time.perf_counter() - wall
        after_server, after_pg = self.snapshot()
        pg = sum(cpu - before_pg.get(pid, 0.0) for pid, cpu in after_pg.items())
        return {
            "server_ms": round((after_server - before_server) * 1000 / n, 3),
            "pg_ms": round(pg * 1000 / n, 3),
            "wall_ms": round(wall * 1000 / n, 3),
            "new_backends": len(set(after_pg) - set(before_pg)),
        }


def run_round(
    db: str, n: int, work: Path, src: str | None, concurrent: int
) -> dict[str, dict[str, float]]:
    python = sys.executable
    amazon_port, port = free_port(), free_port()
    amazon = f"http://127.0.0.1:{amazon_port}"
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    if src:  # measure another commit's code: `git archive <commit> src | tar -x -C DIR`
        env["PYTHONPATH"] = src
    database = None
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(work / "data"),
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_SECRET_KEY": "perf-measure-secret-key-0123456789abcdef",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            "LWA_ACCOUNTS_PUBLIC_URL": base,
            "LWA_ACCOUNTS_LWA_CLIENT_ID": WEB,
            "LWA_ACCOUNTS_LWA_CLIENT_SECRET": WEB_SECRET,
            "LWA_ACCOUNTS_LWA_DEVICE_CLIENT_ID": DEVICE,
            "LWA_ACCOUNTS_LWA_ALLOWED_CLIENT_IDS": f"{WEB},{DEVICE}",
            "LWA_ACCOUNTS_LWA_API_URL": amazon,
            "LWA_ACCOUNTS_LWA_AUTHORIZE_URL": f"{amazon}/ap/oa",
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_IP": "1000000/hour",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT": "1000000/hour",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT_IP": "1000000/hour",
        }
    )
    if db == "postgres":
        database = f"lwa_perf_{uuid.uuid4().hex[:10]}"
        admin_sql(f'CREATE DATABASE "{database}"')
        env["LWA_ACCOUNTS_DATABASE_URL"] = f"{PG}/{database}"
    try:
        with (
            process(
                [python, "-m", "lwa_accounts.cli", "emulator", "serve", "--port", str(amazon_port)],
                env,
                f"{amazon}/_emulator/customers",
                work / "amazon.log",
            ),
            process(
                [
                    python,
                    "-m",
                    "lwa_accounts.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env,
                f"{base}/health",
                work / "server.log",
            ) as server_pid,
            httpx.Client(base_url=base, timeout=30) as http,
            httpx.Client(base_url=amazon, timeout=30) as control,
        ):
            return scenarios(Meter(server_pid, database), http, control, n, concurrent)
    finally:
        if database:
            admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def scenarios(
    meter: Meter, http: httpx.Client, control: httpx.Client, n: int, concurrent: int
) -> dict[str, dict[str, float]]:
    warm = max(20, n // 10)

    def mint(user_id: str) -> str:
        r = control.post("/_emulator/tokens", json={"user_id": user_id, "client_id": DEVICE})
        assert r.status_code == 201, r.text
        token: str = r.json()["access_token"]
        return token

    def customers(count: int, tag: str) -> list[str]:
        ids = []
        for i in range(count):
            user_id = f"amzn1.account.PERF{tag}{i:07d}"
            r = control.post(
                "/_emulator/customers",
                json={
                    "user_id": user_id,
                    "name": f"Perf User {tag} {i}",
                    "email": f"perf.{tag.lower()}.{i}@example.com",
                    "postal_code": "98109",
                },
            )
            assert r.status_code == 201, r.text
            ids.append(user_id)
        return ids

    def sign_in(token: str, expect: int = 201) -> httpx.Response:
        r = http.post("/api/v1/sessions/amazon", json={"access_token": token, "device_name": "TV"})
        assert r.status_code == expect, r.text
        return r

    results: dict[str, dict[str, float]] = {}

    # First-time sign-in: a new customer each time.
    users = customers(warm + n, "F")
    tokens = [mint(u) for u in users]
    for t in tokens[:warm]:
        sign_in(t)
    results["first_sign_in"] = meter.measure(n, lambda i: void(sign_in(tokens[warm + i])))

    # Returning sign-in: the same linked customer, a fresh token each time.
    returning = users[0]
    tokens = [mint(returning) for _ in range(warm + n)]
    for t in tokens[:warm]:
        sign_in(t)
    results["returning_sign_in"] = meter.measure(n, lambda i: void(sign_in(tokens[warm + i])))

    # Session check.
    bearer = {"Authorization": "Bearer " + sign_in(mint(returning)).json()["session"]["token"]}

    def me(_: int) -> None:
        r = http.get("/api/v1/me", headers=bearer)
        assert r.status_code == 200, r.text

    for i in range(warm):
        me(i)
    results["me"] = meter.measure(n, me)

    if meter.database and concurrent:
        # New database connections per 1,000 returning sign-ins, `concurrent` at a time:
        # pg_stat_database.sessions counts every connection PostgreSQL accepted.
        # A warm-up of 200 at the same concurrency first: the pool's first fill is not churn.
        total, warm_up = 1000, 200
        tokens = [mint(returning) for _ in range(total + warm_up)]
        before = 0
        with ThreadPoolExecutor(concurrent) as pool:
            clients = [
                httpx.Client(base_url=str(http.base_url), timeout=30) for _ in range(concurrent)
            ]

            def one(i: int) -> None:
                r = clients[i % concurrent].post(
                    "/api/v1/sessions/amazon", json={"access_token": tokens[i], "device_name": "TV"}
                )
                assert r.status_code == 201, r.text

            list(pool.map(one, range(total, total + warm_up)))
            before = sessions_opened(meter.database)
            list(pool.map(one, range(total)))
            for c in clients:
                c.close()
        results["concurrent_sign_in"] = {
            "concurrent": concurrent,
            "new_db_connections_per_1000": sessions_opened(meter.database) - before,
        }
    return results


def sessions_opened(database: str) -> int:
    sql = f"SELECT sessions FROM pg_stat_database WHERE datname = '{database}'"  # noqa: S608
    return int(admin_sql(sql)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("-n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--label", default="")
    parser.add_argument("--src", help="a src/ directory to run instead of this checkout's")
    parser.add_argument("--concurrent", type=int, default=0, help="PG: 1,000 sign-ins, N at once")
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="lwa-perf-") as tmp:
            result = run_round(args.db, args.n, Path(tmp), args.src, args.concurrent)
        print(json.dumps({"label": args.label, "db": args.db, "n": args.n, **result}), flush=True)
        rounds.append(result)
    for name in rounds[0]:
        if "server_ms" not in rounds[0][name]:
            continue
        server = [r[name]["server_ms"] for r in rounds]
        pg = [r[name]["pg_ms"] for r in rounds]
        print(
            f"{args.label} {args.db} {name}: server median {statistics.median(server):.2f}"
            f" (min {min(server):.2f}) ms + PG median {statistics.median(pg):.2f}"
            f" (min {min(pg):.2f}) ms per op"
        )


if __name__ == "__main__":
    main()
