"""Client CPU per Amazon call: httpx vs aiohttp against the emulated Amazon over TCP.

    .venv/bin/python benchmarks/perf/http_clients.py -n 2000

The emulator runs in its own process, so ``time.process_time()`` here is the client's
CPU only: a tokeninfo GET and a profile GET per call pair, keep-alive, sequential.
aiohttp is not a dependency of the service; install it in the venv to run this.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time

import httpx

from lwa_accounts.lwa.aiohttp_transport import AiohttpTransport
from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID

ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def with_httpx(
    base: str, token: str, n: int, transport: httpx.AsyncBaseTransport | None = None
) -> float:
    async with httpx.AsyncClient(base_url=base, transport=transport) as client:
        for _ in range(20):
            await client.get("/auth/o2/tokeninfo", params={"access_token": token})
        cpu = time.process_time()
        for _ in range(n):
            r = await client.get("/auth/o2/tokeninfo", params={"access_token": token})
            r.json()
            r = await client.get("/user/profile", headers={"Authorization": f"Bearer {token}"})
            r.json()
        return (time.process_time() - cpu) * 1000 / (2 * n)


async def with_aiohttp(base: str, token: str, n: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession(base_url=base) as session:
        for _ in range(20):
            async with session.get("/auth/o2/tokeninfo", params={"access_token": token}) as r:
                await r.read()
        cpu = time.process_time()
        for _ in range(n):
            async with session.get("/auth/o2/tokeninfo", params={"access_token": token}) as r:
                await r.json()
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get("/user/profile", headers=headers) as r:
                await r.json()
        return (time.process_time() - cpu) * 1000 / (2 * n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "lwa_accounts.cli", "emulator", "serve", "--port", str(port)]
    emulator = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/_emulator/customers", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        token = httpx.post(
            f"{base}/_emulator/tokens",
            json={"user_id": ADA, "client_id": EMULATED_DEVICE_CLIENT_ID},
        ).json()["access_token"]
        for _ in range(args.rounds):  # alternate, so a load change hits both
            a = asyncio.run(with_httpx(base, token, args.n))
            b = asyncio.run(with_aiohttp(base, token, args.n))
            hybrid = AiohttpTransport(max_connections=20, keepalive_expiry=30)
            c = asyncio.run(with_httpx(base, token, args.n, hybrid))
            print(
                f"client CPU per call: httpx {a:.3f} ms, aiohttp {b:.3f} ms,"
                f" httpx over AiohttpTransport {c:.3f} ms"
            )
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    main()
