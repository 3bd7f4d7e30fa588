"""cProfile of N sequential operations through the ASGI app (emulated Amazon in-process).

    .venv/bin/python benchmarks/perf/profile_ops.py returning -n 300 [--db URL] [--top 30]

The profile includes the client and the emulator (in-process); read it for where the
server's own time goes (SQLAlchemy compile, httpx, pydantic...), not for totals.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID
from lwa_accounts.testing import offline_settings
from lwa_accounts.web.app import create_app

ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"


async def run(op: str, n: int, database_url: str | None, top: int, sort: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = offline_settings(Path(tmp), database_url=database_url, public_url="http://t")
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

                async def mint() -> str:
                    r = await client.post(
                        "/_amazon/_emulator/tokens",
                        json={"user_id": ADA, "client_id": EMULATED_DEVICE_CLIENT_ID},
                    )
                    token: str = r.json()["access_token"]
                    return token

                async def sign_in(token: str) -> httpx.Response:
                    r = await client.post("/api/v1/sessions/amazon", json={"access_token": token})
                    assert r.status_code == 201, r.text
                    return r

                session = (await sign_in(await mint())).json()["session"]["token"]
                tokens = [await mint() for _ in range(n + 20)]
                headers = {"Authorization": f"Bearer {session}"}

                async def once(i: int) -> None:
                    if op == "returning":
                        await sign_in(tokens[i])
                    else:
                        r = await client.get("/api/v1/me", headers=headers)
                        assert r.status_code == 200

                for i in range(20):
                    await once(n + i)
                profiler = cProfile.Profile()
                cpu = time.process_time()
                profiler.enable()
                for i in range(n):
                    await once(i)
                profiler.disable()
                cpu = time.process_time() - cpu
    print(f"{op}: {cpu * 1000 / n:.2f} ms CPU per op in-process (client + emulator included)")
    pstats.Stats(profiler).sort_stats(sort).print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("op", choices=["returning", "me"])
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--db")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    args = parser.parse_args()
    asyncio.run(run(args.op, args.n, args.db, args.top, args.sort))


if __name__ == "__main__":
    main()
