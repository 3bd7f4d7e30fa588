"""The emulated Amazon as its own process (``lwa-accounts emulator serve``), so its CPU is
never counted as ours, and the test-control calls the scenarios prepare their data with."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpx

PREPARE_CONCURRENCY = 16


class Control:
    """Test-control API calls, made between measured windows only."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def _many(self, calls: Iterable[tuple[str, str, dict[str, Any]]]) -> list[Any]:
        slots = asyncio.Semaphore(PREPARE_CONCURRENCY)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:

            async def one(method: str, path: str, body: dict[str, Any]) -> Any:
                async with slots:
                    response = await client.request(method, path, json=body)
                    response.raise_for_status()
                    return response.json()

            return await asyncio.gather(*(one(m, p, b) for m, p, b in calls))

    def add_customers(self, people: list[dict[str, str]]) -> None:
        asyncio.run(self._many(("POST", "/_emulator/customers", p) for p in people))

    def mint(self, user_ids: list[str]) -> list[str]:
        answers = asyncio.run(
            self._many(("POST", "/_emulator/tokens", {"user_id": u}) for u in user_ids)
        )
        return [a["access_token"] for a in answers]

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        self.clear_faults()
        asyncio.run(self._many(("POST", "/_emulator/faults", f) for f in faults))

    def clear_faults(self) -> None:
        httpx.delete(f"{self.base_url}/_emulator/faults", timeout=10).raise_for_status()


def customer(run_tag: str, kind: str, index: int) -> dict[str, str]:
    """An emulated customer whose id and e-mail no other run or scenario uses."""
    handle = f"{kind}{run_tag}{index:07d}"
    return {
        "user_id": f"amzn1.account.BENCH{handle.upper()}",
        "name": f"{handle.capitalize()} Bench",  # distinct: peers derive usernames from it
        "email": f"{handle}@bench.example.com",
    }
