"""security.md item 8: limits slow attackers without locking the owner out.

Over real HTTP against a real ``lwa-accounts serve``, with clients on different loopback
source addresses (the whole of 127.0.0.0/8 is local on Linux), so the server sees
different client IPs without trusting any proxy header:

- a guesser at one address spends that address's tight budget for the account (5 x 401,
  then 429), and the owner at another address still signs in;
- guessers spread over many addresses together get no more than the account's budget
  from every address (its first tier), however the requests interleave.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import CLI, free_port, running_server

PASSWORD = "tangerine-elephant-42"
WRONG = "not-the-password-at-all"
PAIR_BUDGET = 5  # the default per (account, IP)
ACCOUNT_BUDGET = 12  # configured below: the account's budget from every IP


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(tmp_path / "var"),
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            "LWA_ACCOUNTS_PUBLIC_URL": url,
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT": f"{ACCOUNT_BUDGET}/15minutes",
            "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_IP": "100/15minutes",
        }
    )
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        ready_url=url + "/health",
        log=tmp_path / "serve.log",
    ):
        yield url


@pytest.fixture
async def from_address(server: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """A client per loopback source address, made on first use."""
    made: dict[str, httpx.AsyncClient] = {}

    class Clients(dict[str, httpx.AsyncClient]):
        def __missing__(self, address: str) -> httpx.AsyncClient:
            transport = httpx.AsyncHTTPTransport(local_address=address)
            client = httpx.AsyncClient(base_url=server, transport=transport, timeout=60)
            made[address] = client
            self[address] = client
            return client

    try:
        yield Clients()
    finally:
        for client in made.values():
            await client.aclose()


async def sign_in(client: httpx.AsyncClient, password: str) -> int:
    response = await client.post("/api/v1/sessions", json={"username": "ada", "password": password})
    assert response.status_code in (201, 401, 429), response.text
    return response.status_code


async def test_sec08_guesses_from_one_address_leave_the_owner_signing_in(
    from_address: dict[str, httpx.AsyncClient],
) -> None:
    owner = from_address["127.0.0.1"]
    created = await owner.post(
        "/api/v1/accounts",
        json={"username": "ada", "email": "ada@example.com", "name": "Ada", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    attacker = from_address["127.0.0.2"]

    guesses = Counter(await asyncio.gather(*(sign_in(attacker, WRONG) for _ in range(20))))
    assert guesses == {401: PAIR_BUDGET, 429: 20 - PAIR_BUDGET}
    assert await sign_in(attacker, PASSWORD) == 429  # the right password too, from there

    assert await sign_in(owner, PASSWORD) == 201


async def test_sec08_guesses_spread_over_addresses_get_the_accounts_budget(
    from_address: dict[str, httpx.AsyncClient],
) -> None:
    created = await from_address["127.0.0.1"].post(
        "/api/v1/accounts",
        json={"username": "ada", "email": "ada@example.com", "name": "Ada", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    addresses = [f"127.0.0.{n}" for n in range(2, 8)]  # 6 addresses x 5 = 30 > 12

    guesses = Counter(
        await asyncio.gather(
            *(sign_in(from_address[a], WRONG) for a in addresses for _ in range(PAIR_BUDGET))
        )
    )
    assert guesses == {401: ACCOUNT_BUDGET, 429: len(addresses) * PAIR_BUDGET - ACCOUNT_BUDGET}
    assert await sign_in(from_address["127.0.0.9"], WRONG) == 429
