"""Measure the account system: GET /api/v1/me with a bearer token, and password sign-ins.

    .venv/bin/python benchmarks/accounts_bench.py [--duration 10] [--concurrency 16]

1. Starts the real ``lwa-accounts serve`` (one uvicorn worker, SQLite in a fresh temporary
   DATA_DIR, the default OWASP argon2 parameters m=19456 KiB t=2 p=1) on a free loopback port.
   The password throttle is widened for this process only, so sign-ins are measured, not 429s.
2. Registers one account and signs it in to get a bearer token.
3. Runs the load generator in a SEPARATE process (this script with ``load``): an async httpx
   client with ``--concurrency`` workers sending requests back to back for ``--duration``
   seconds over keep-alive connections; it reports requests/s and latency percentiles.
   It also reads the server's CPU time from /proc before and after, so "server CPU ms per
   request" stays meaningful on a busy, shared machine.
4. Does the same for POST /api/v1/sessions (argon2 verify + session insert + audit).
   With ``--database-url`` the server uses that (empty) database instead of SQLite.
5. Measures raw argon2 verifications/s of the hasher alone, in-process, for comparison.

The machine is shared; numbers are indicative. Prints one JSON document at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "bench-mark-passphrase-1"  # noqa: S105 - a throwaway benchmark account


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


# ---- the load generator (runs in its own process) ----------------------------------------


async def _load(
    url: str, method: str, body: str | None, token: str | None, duration: float, concurrency: int
) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        # Warm up the connections first so the window measures steady state.
        await asyncio.gather(
            *(
                client.request(method, url, headers=headers, content=body)
                for _ in range(concurrency)
            )
        )
        stop = time.perf_counter() + duration

        async def worker() -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await client.request(method, url, headers=headers, content=body)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "statuses": statuses,
        "concurrency": concurrency,
    }


def load_main(args: argparse.Namespace) -> None:
    result = asyncio.run(
        _load(args.url, args.method, args.body, args.token, args.duration, args.concurrency)
    )
    print(json.dumps(result))


def run_load(
    url: str, *, method: str, body: str | None, token: str | None, duration: float, concurrency: int
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "load",
        "--url",
        url,
        "--method",
        method,
        "--duration",
        str(duration),
        "--concurrency",
        str(concurrency),
    ]
    if body is not None:
        command += ["--body", body]
    if token is not None:
        command += ["--token", token]
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ---- the orchestration ---------------------------------------------------------------------


def start_server(data_dir: Path, port: int, database_url: str | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    if database_url:
        env["LWA_ACCOUNTS_DATABASE_URL"] = database_url
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT": "1000000/minute",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_IP": "1000000/minute",
        }
    )
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "lwa_accounts.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), robust to a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def with_server_cpu(pid: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    before = cpu_seconds(pid)
    result = run()
    used = cpu_seconds(pid) - before
    result["server_cpu_seconds"] = round(used, 2)
    # Includes the load generator's warm-up requests (one per connection).
    total = result["requests"] + result["concurrency"]
    result["server_cpu_ms_per_request"] = round(used * 1000 / total, 3)
    return result


def hasher_rate(seconds: float) -> dict[str, Any]:
    from lwa_accounts.passwords import Argon2Hasher
    from lwa_accounts.settings import Settings

    async def measure() -> dict[str, Any]:
        hasher = Argon2Hasher(Settings(env="test", data_dir=Path(tempfile.mkdtemp())))
        password_hash = await hasher.hash(PASSWORD)
        workers = os.cpu_count() or 1
        done = 0
        stop = time.perf_counter() + seconds
        began = time.perf_counter()

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                assert await hasher.verify(password_hash, PASSWORD)
                done += 1

        await asyncio.gather(*(worker() for _ in range(workers)))
        elapsed = time.perf_counter() - began
        return {
            "verifications_per_second": round(done / elapsed, 1),
            "threads": workers,
            "hash": password_hash.split("$")[3],
        }

    return asyncio.run(measure())


def bench_main(args: argparse.Namespace) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(Path(data_dir), port, args.database_url)
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                client.post(
                    "/api/v1/accounts",
                    json={
                        "username": "bench",
                        "email": "bench@example.com",
                        "name": "Bench",
                        "password": PASSWORD,
                    },
                ).raise_for_status()
                token = client.post(
                    "/api/v1/sessions",
                    json={
                        "username": "bench",
                        "password": PASSWORD,
                    },
                ).json()["session"]["token"]
            me = with_server_cpu(
                server.pid,
                lambda: run_load(
                    base + "/api/v1/me",
                    method="GET",
                    body=None,
                    token=token,
                    duration=args.duration,
                    concurrency=args.concurrency,
                ),
            )
            sign_in_body = json.dumps(
                {"username": "bench", "password": PASSWORD, "device_name": "bench"}
            )
            sign_ins = with_server_cpu(
                server.pid,
                lambda: run_load(
                    base + "/api/v1/sessions",
                    method="POST",
                    body=sign_in_body,
                    token=None,
                    duration=args.duration,
                    concurrency=args.sign_in_concurrency,
                ),
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    report = {
        "cpus": os.cpu_count(),
        "database": (args.database_url or "sqlite").split(":")[0],
        "get_me": me,
        "password_sign_in": sign_ins,
        "argon2_alone": hasher_rate(min(args.duration, 5)),
    }
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode")
    load = sub.add_parser("load", help="(internal) the load generator process")
    load.add_argument("--url", required=True)
    load.add_argument("--method", default="GET")
    load.add_argument("--body", default=None)
    load.add_argument("--token", default=None)
    load.add_argument("--duration", type=float, default=10)
    load.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sign-in-concurrency", type=int, default=4)
    parser.add_argument(
        "--database-url",
        default=None,
        help="an EMPTY database to use instead of SQLite, e.g. postgresql+asyncpg://...",
    )
    args = parser.parse_args()
    if args.mode == "load":
        load_main(args)
    else:
        bench_main(args)


if __name__ == "__main__":
    main()
