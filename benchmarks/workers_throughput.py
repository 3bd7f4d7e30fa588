"""Throughput of ``serve --workers 1`` against ``--workers 2`` (issue 11's "--workers 2 on 2
cores" goal), for a session check and a password sign-in.

    .venv/bin/python -m benchmarks.workers_throughput [--database sqlite|postgres]
        [--rounds 3] [--seconds 10] [--connections 16]

Each round starts a fresh server per worker count (alternating, so drift on this shared
machine hits both alike) against a standalone emulated Amazon and Redis, registers one
account, then runs ``wrk`` (closed loop, keep-alive, one client thread) for ``GET
/api/v1/me`` and for ``POST /api/v1/sessions`` with the real argon2 parameters. Prints
requests per second per round, the server tree's CPU ms per request and cores busy
(utime + stime of the parent and its workers from /proc), the medians and the 2-worker /
1-worker ratio. wrk runs on the same 2 cores as the server, and on a machine shared with
other work throughput swings between rounds: compare CPU ms per request and cores busy too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.conftest import REDIS_URL
from tests.processes import CLI, free_port, running_server
from tests.workers_harness import amazon_client_environment, base_environment

PASSWORD = "tangerine-elephant-42"  # noqa: S105 - a throwaway benchmark account
SIGN_IN_LUA = f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{{"username": "bench", "password": "{PASSWORD}"}}'
"""


TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (the workers), from /proc."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    total = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def wrk(url: str, seconds: int, connections: int, *args: str) -> float:
    out = subprocess.run(  # noqa: S603 - wrk from PATH with our own arguments
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *args, url],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def measure(
    workers: int, database: str, work: Path, amazon: str, seconds: int, connections: int
) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = work / f"w{workers}-{uuid.uuid4().hex[:6]}"
    extra = {} if database == "sqlite" else {"LWA_ACCOUNTS_DATABASE_URL": database}
    env = base_environment(
        data_dir,
        LWA_ACCOUNTS_REDIS_URL=REDIS_URL,
        LWA_ACCOUNTS_REDIS_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
        **amazon_client_environment(amazon),
        # 16 sign-ins of one account in flight at once: each reserves an attempt before
        # argon2, so the default budgets (5 per account and IP) would answer 429.
        LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT_IP="100000/minute",  # noqa: S106
        LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT="100000/minute",  # noqa: S106
        LWA_ACCOUNTS_PASSWORD_LIMIT_PER_IP="100000/minute",  # noqa: S106
        **extra,
    )
    # The real argon2 parameters (the harness lowers them for tests).
    del env["LWA_ACCOUNTS_ARGON2_MEMORY_KIB"], env["LWA_ACCOUNTS_ARGON2_TIME_COST"]
    command = [*CLI, "serve", "--port", str(port), "--workers", str(workers)]
    log = work / f"serve-{workers}.log"
    with running_server(
        command, env=env, ready_url=base + "/health", log=log, timeout=90
    ) as server:
        username = f"bench{uuid.uuid4().hex[:6]}" if database != "sqlite" else "bench"
        account = {"username": username, "email": f"{username}@example.com", "name": "B"}
        created = httpx.post(
            base + "/api/v1/accounts", json={**account, "password": PASSWORD}, timeout=30
        )
        assert created.status_code == 201, created.text
        signed_in = httpx.post(
            base + "/api/v1/sessions",
            json={"username": username, "password": PASSWORD},
            timeout=30,
        )
        token = signed_in.json()["session"]["token"]
        script = work / f"signin-{username}.lua"
        script.write_text(SIGN_IN_LUA.replace('"bench"', json.dumps(username)))
        wrk(base + "/health", 2, connections)  # warm both workers up
        before = tree_cpu_seconds(server.pid)
        me = wrk(base + "/api/v1/me", seconds, connections, "-H", f"Authorization: Bearer {token}")
        middle = tree_cpu_seconds(server.pid)
        sign_in = wrk(base + "/api/v1/sessions", seconds, connections, "-s", str(script))
        after = tree_cpu_seconds(server.pid)
    # CPU ms per request; CPU seconds per second of wall time (> 1: more than one core).
    return {
        "me": me,
        "sign_in": sign_in,
        "me_cpu_ms": 1000 * (middle - before) / (me * seconds),
        "sign_in_cpu_ms": 1000 * (after - middle) / (sign_in * seconds),
        "me_cores": (middle - before) / seconds,
        "sign_in_cores": (after - middle) / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as temp, ExitStack() as stack:
        work = Path(temp)
        amazon_port = free_port()
        amazon = f"http://127.0.0.1:{amazon_port}"
        stack.enter_context(
            running_server(
                [*CLI, "emulator", "serve", "--port", str(amazon_port)],
                env=base_environment(work / "amazon"),
                ready_url=amazon + "/_emulator/clock",
                log=work / "amazon.log",
            )
        )
        for round_number in range(args.rounds):
            order = (1, 2) if round_number % 2 == 0 else (2, 1)
            for workers in order:
                result = measure(
                    workers, args.database, work, amazon, args.seconds, args.connections
                )
                results[workers].append(result)
                print(f"round {round_number + 1} workers={workers}: {result}", flush=True)
    summary = {
        scenario: {str(w): statistics.median(r[scenario] for r in results[w]) for w in (1, 2)}
        for scenario in (
            "me",
            "sign_in",
            "me_cpu_ms",
            "sign_in_cpu_ms",
            "me_cores",
            "sign_in_cores",
        )
    }
    for scenario in ("me", "sign_in"):
        medians = summary[scenario]
        ratio = medians["2"] / medians["1"]
        print(
            f"{scenario}: 1 worker {medians['1']:.0f}/s, 2 workers {medians['2']:.0f}/s, "
            f"ratio {ratio:.2f}"
        )
    print(json.dumps({"database": args.database.split("@")[-1], "medians": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
