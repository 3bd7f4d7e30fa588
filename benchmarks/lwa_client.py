"""Measure LwaClient.verify_and_fetch against the emulator served by uvicorn in another process.

    .venv/bin/python benchmarks/lwa_client.py [--calls 1000] [--concurrency 1]

The emulator runs in a child process on a random loopback port, so ``time.process_time()``
in this process counts only the client's CPU (httpx, parsing, checks, asyncio). New TCP
connections are counted with httpcore's ``trace`` extension ("connection.connect_tcp").
For comparison the same calls run once more with a fresh client per verification, which is
what a server that does not share its client pays. Plain HTTP on loopback: against the real
Amazon every new connection also costs a TLS handshake, so reuse saves more than shown here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from lwa_accounts.lwa.client import LwaClient, build_transport
from lwa_accounts.settings import Settings

ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"


def serve_emulator() -> None:
    """Child process: bind a free loopback port, print it, serve the emulator there."""
    import uvicorn

    from lwa_accounts.emulator.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it: uvicorn writes the head and body separately, and without
    # TCP_NODELAY each keep-alive response waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(create_app(), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


class CountingTransport(httpx.AsyncBaseTransport):
    """Delegates to the pooled transport and counts the TCP connections it opens."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.connections = 0

    async def _trace(self, name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            self.connections += 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["trace"] = self._trace
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def run_calls(
    calls: int, concurrency: int, verify: Callable[[], Awaitable[object]]
) -> tuple[float, float]:
    """CPU seconds and wall seconds for ``calls`` verifications, ``concurrency`` at a time."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await verify()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def benchmark(base: str, calls: int, concurrency: int) -> dict[str, Any]:
    settings = Settings(lwa_api_url=base, lwa_authorize_url=f"{base}/ap/oa")
    async with httpx.AsyncClient(base_url=base) as control:
        minted = await control.post("/_emulator/tokens", json={"user_id": ADA})
        minted.raise_for_status()
        token = minted.json()["access_token"]

    # Shared client: the production set-up.
    counting = CountingTransport(build_transport(settings))
    async with LwaClient(settings, transport=counting) as client:
        await client.verify_and_fetch(token)  # warm-up (imports, first connections)
        warm_connections = counting.connections
        runs = [await run_calls(calls, concurrency, lambda: client.verify_and_fetch(token))]
        runs.append(await run_calls(calls, concurrency, lambda: client.verify_and_fetch(token)))
        shared_connections = counting.connections - warm_connections

    # Control: a new client (new pool, new connections) for every verification.
    fresh_counter = {"connections": 0}

    async def fresh_verify() -> None:
        transport = CountingTransport(build_transport(settings))
        async with LwaClient(settings, transport=transport) as fresh:
            await fresh.verify_and_fetch(token)
        fresh_counter["connections"] += transport.connections

    fresh_calls = max(1, calls // 5)
    fresh_cpu, fresh_wall = await run_calls(fresh_calls, concurrency, fresh_verify)

    cpu = statistics.median(run[0] for run in runs)
    wall = statistics.median(run[1] for run in runs)
    return {
        "calls_per_run": calls,
        "concurrency": concurrency,
        "shared_client": {
            "cpu_ms_per_verify": round(cpu / calls * 1000, 3),
            "wall_ms_per_verify": round(wall / calls * 1000, 3),
            "new_connections_per_1000": round(shared_connections / (2 * calls) * 1000, 2),
            "new_connections_total": shared_connections,
            "connections_opened_by_warm_up_call": warm_connections,
        },
        "client_per_call": {
            "calls": fresh_calls,
            "cpu_ms_per_verify": round(fresh_cpu / fresh_calls * 1000, 3),
            "wall_ms_per_verify": round(fresh_wall / fresh_calls * 1000, 3),
            "new_connections_per_1000": round(fresh_counter["connections"] / fresh_calls * 1000, 2),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator()
        return 0
    child = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, __file__, "--serve-emulator"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # wait until it accepts connections
            try:
                httpx.get(f"{base}/_emulator/clock", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        result = asyncio.run(benchmark(base, args.calls, args.concurrency))
    finally:
        child.terminate()
        child.wait(timeout=10)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
