"""security.md item 8: parallel attempts never get more than their budget through.

Attacks over real HTTP against real ``lwa-accounts serve`` processes: one server (SQLite,
memory throttle) and two servers sharing one PostgreSQL database and one Redis, each test
with its own Redis key prefix. Plus one in-process test that holds wrong guesses inside
argon2 to place a right password deterministically behind them.

Every assertion counts outcomes; none depends on how the requests interleave.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from lwa_accounts.clock import FixedClock
from lwa_accounts.flows.accounts import register
from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.flows.passwords import PasswordCheck, check_password
from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID, Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import code_in, queued_mail
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import START, CountingHasher, fast_settings
from tests.processes import CLI, free_port, running_server

PASSWORD = "tangerine-elephant-42"
WRONG = "not-the-password-at-all"
ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"  # the emulator's demo customer
BUDGET = 5  # password attempts per account (the default 5/15minutes)
REGISTRATION_LIMIT = 5


# ---- servers ----------------------------------------------------------------------------------


@dataclass
class Servers:
    """Base URLs of the running servers; request ``n`` goes to server ``n % len(urls)``."""

    urls: list[str]
    settings: Settings  # what the servers share: their database and data directory

    def client(self, n: int, clients: Sequence[httpx.AsyncClient]) -> httpx.AsyncClient:
        return clients[n % len(clients)]


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """Production's argon2 parameters: the time a guess spends in argon2 is the window
    a check-then-count throttle leaves open."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            "LWA_ACCOUNTS_REGISTRATION_LIMIT_PER_IP": f"{REGISTRATION_LIMIT}/hour",
        }
    )
    env.update(extra)
    return env


def start_servers(stack: ExitStack, tmp_path: Path, count: int, env: dict[str, str]) -> Servers:
    urls = []
    for n in range(count):  # one after the other: the first migrates the database
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stack.enter_context(
            running_server(
                [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env={**env, "LWA_ACCOUNTS_PUBLIC_URL": url},
                ready_url=url + "/health",
                log=tmp_path / f"serve-{n}.log",
            )
        )
        urls.append(url)
    shared = Settings(
        env="development",
        data_dir=Path(env["LWA_ACCOUNTS_DATA_DIR"]),
        database_url=env.get("LWA_ACCOUNTS_DATABASE_URL"),
    )
    return Servers(urls, shared)


@pytest.fixture
def one_server(tmp_path: Path) -> Iterator[Servers]:
    with ExitStack() as stack:
        yield start_servers(stack, tmp_path, 1, environment(tmp_path / "var"))


@pytest.fixture
async def two_servers(tmp_path: Path, postgres_url: str, redis_url: str) -> AsyncIterator[Servers]:
    prefix = f"lwa-test-{uuid.uuid4().hex}"
    env = environment(
        tmp_path / "var",  # shared: both read the same development secret key
        LWA_ACCOUNTS_DATABASE_URL=postgres_url,
        LWA_ACCOUNTS_REDIS_URL=redis_url,
        LWA_ACCOUNTS_REDIS_KEY_PREFIX=prefix,
    )
    try:
        with ExitStack() as stack:
            yield start_servers(stack, tmp_path, 2, env)
    finally:
        client = aioredis.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=prefix + ":*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(
    params=[
        "one_server",
        pytest.param(
            "two_servers", marks=[pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
        ),
    ]
)
def servers(request: pytest.FixtureRequest) -> Servers:
    """One SQLite server with the memory throttle, or two sharing PostgreSQL + Redis."""
    value: Servers = request.getfixturevalue(request.param)
    return value


@pytest.fixture
async def clients(servers: Servers) -> AsyncIterator[list[httpx.AsyncClient]]:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    made = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for url in servers.urls]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


# ---- calls ------------------------------------------------------------------------------------


async def sign_up(client: httpx.AsyncClient, username: str) -> httpx.Response:
    email = f"{username}@example.com"  # "ada": the email of the emulator's Ada
    return await client.post(
        "/api/v1/accounts",
        json={"username": username, "email": email, "name": username, "password": PASSWORD},
    )


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/sessions", json={"username": username, "password": password})


async def link_with_password(
    client: httpx.AsyncClient, flow_id: str, password: str
) -> httpx.Response:
    """The link step's password (the flow id travels in the body, never in the path)."""
    return await client.post("/api/v1/flows/link", json={"flow_id": flow_id, "password": password})


async def link_required_flow(client: httpx.AsyncClient) -> str:
    """Amazon's Ada (ada@example.com) signs in on a device: her email matches local "ada"."""
    minted = await client.post(
        "/_amazon/_emulator/tokens",
        json={"user_id": ADA, "client_id": EMULATED_DEVICE_CLIENT_ID, "scope": "profile"},
    )
    assert minted.status_code == 201, minted.text
    answer = await client.post(
        "/api/v1/sessions/amazon", json={"access_token": minted.json()["access_token"]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "link_required"
    flow_id: str = answer.json()["flow"]["id"]
    return flow_id


def statuses(responses: Sequence[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def attempts_left(responses: Sequence[httpx.Response]) -> list[int]:
    return sorted(r.json()["attempts_left"] for r in responses if r.status_code == 401)


# ---- attacks ----------------------------------------------------------------------------------


async def test_sec08_parallel_password_guesses_get_exactly_the_budget(
    servers: Servers, clients: list[httpx.AsyncClient]
) -> None:
    """Sign-in, a right password in a burst, and the Amazon link step, on one set of
    servers (three accounts: 15 guesses in all, within the IP's budget of 30)."""
    await parallel_wrong_sign_ins(servers, clients, "bob")
    await right_password_in_a_burst(servers, clients, "carol")
    await parallel_wrong_link_passwords(servers, clients)


async def parallel_wrong_sign_ins(
    servers: Servers, clients: list[httpx.AsyncClient], username: str
) -> None:
    assert (await sign_up(clients[0], username)).status_code == 201
    burst = await asyncio.gather(
        *(sign_in(servers.client(n, clients), username, WRONG) for n in range(40))
    )
    assert statuses(burst) == {401: BUDGET, 429: 40 - BUDGET}
    assert attempts_left(burst) == list(range(BUDGET))  # attempts left after each one
    assert all(int(r.headers["retry-after"]) >= 1 for r in burst if r.status_code == 429)
    # The budget is spent: the right password gets 429 too, on every server.
    for client in clients:
        right = await sign_in(client, username, PASSWORD)
        assert right.status_code == 429, right.text
        assert right.json()["code"] == "too_many_attempts"


async def right_password_in_a_burst(
    servers: Servers, clients: list[httpx.AsyncClient], username: str
) -> None:
    """12 wrong guesses, then the right one, all at once."""
    assert (await sign_up(clients[0], username)).status_code == 201
    guesses = [WRONG] * 12 + [PASSWORD]
    burst = await asyncio.gather(
        *(sign_in(servers.client(n, clients), username, g) for n, g in enumerate(guesses))
    )
    counted = statuses(burst)
    # Exactly the budget was verified; everything else was refused before argon2.
    assert counted[429] == len(guesses) - BUDGET
    assert counted[401] + counted[201] == BUDGET
    # The right password signs in only as one of the first five guesses taken, never beyond
    # (held deterministically behind the wrong ones: the in-process test below).
    assert burst[-1].status_code in (201, 429)
    assert counted[201] == (1 if burst[-1].status_code == 201 else 0)


async def confirm_email(servers: Servers, client: httpx.AsyncClient, username: str) -> None:
    """The owner types the code from the verification mail (only a confirmed address is
    ever a link step's target); the mail is read from the servers' shared database."""
    database = Database.from_settings(servers.settings)
    try:
        [mail] = await queued_mail(database, f"{username}@example.com")
    finally:
        await database.dispose()
    token = (await sign_in(client, username, PASSWORD)).json()["session"]["token"]
    confirmed = await client.post(
        "/api/v1/me/email-verification",
        json={"code": code_in(mail)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert confirmed.status_code == 200, confirmed.text


async def parallel_wrong_link_passwords(servers: Servers, clients: list[httpx.AsyncClient]) -> None:
    assert (await sign_up(clients[0], "ada")).status_code == 201
    await confirm_email(servers, clients[0], "ada")
    flow_id = await link_required_flow(clients[0])  # the flow lives in the shared database
    burst = await asyncio.gather(
        *(link_with_password(servers.client(n, clients), flow_id, WRONG) for n in range(40))
    )
    assert statuses(burst) == {401: BUDGET, 429: 40 - BUDGET}, [r.text for r in burst[:3]]
    left = attempts_left(burst)  # the lower of the flow's and the throttle's attempts left
    assert min(left) == 0
    assert max(left) < BUDGET
    right = await link_with_password(clients[-1], flow_id, PASSWORD)
    assert right.status_code == 429, right.text
    # And the account's own sign-in shares the spent budget.
    assert (await sign_in(clients[0], "ada", PASSWORD)).status_code == 429


async def test_sec08_parallel_sign_ups_get_exactly_the_limit_and_failures_cost_nothing(
    servers: Servers, clients: list[httpx.AsyncClient]
) -> None:
    assert (await sign_up(clients[0], "taken")).status_code == 201  # 1 of the limit used
    for n in range(3):  # a taken username is refused and gives its reservation back
        again = await sign_up(servers.client(n, clients), "taken")
        assert again.status_code == 409, again.text
    invalid = await sign_up(clients[0], "x")  # too short: refused before any reservation
    assert invalid.status_code == 422
    burst = await asyncio.gather(
        *(sign_up(servers.client(n, clients), f"user{n:02d}") for n in range(40))
    )
    assert statuses(burst) == {201: REGISTRATION_LIMIT - 1, 429: 40 - REGISTRATION_LIMIT + 1}
    assert all(int(r.headers["retry-after"]) >= 1 for r in burst if r.status_code == 429)


# ---- a right password held behind in-flight wrong ones (in process) ---------------------------


class GatedHasher(CountingHasher):
    """argon2 that waits at a gate, so wrong guesses can be held mid-verification."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.gate = asyncio.Event()
        self.waiting = 0

    async def verify(self, password_hash: str, password: str) -> bool:
        self.waiting += 1
        await self.gate.wait()
        return await super().verify(password_hash, password)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def hosts(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Settings, list[Throttle]]]:
    """The throttles of two "hosts": one memory store, or two clients of one Redis."""
    if request.param == "memory":
        settings = fast_settings(tmp_path, password_limit_per_account_ip="5/15minutes")
        throttle = Throttle(settings)
        yield settings, [throttle, throttle]
        await throttle.aclose()
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = f"lwa-test-{uuid.uuid4().hex}"
    settings = fast_settings(
        tmp_path, password_limit_per_account_ip="5/15minutes", redis_url=redis_url
    )
    made = [Throttle(settings, key_prefix=prefix) for _ in range(2)]
    yield settings, made
    for throttle in made:
        await throttle.aclose()
    client = aioredis.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=prefix + ":*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_sec08_a_right_password_behind_in_flight_wrong_ones_does_not_sign_in(
    hosts: tuple[Settings, list[Throttle]],
) -> None:
    settings, throttles = hosts
    hasher = GatedHasher(settings)
    database = Database.from_settings(settings, clock=FixedClock(START))
    await database.upgrade()
    client = ClientInfo(ip="198.51.100.7", user_agent="pytest")
    deps = [
        Deps(
            settings=settings,
            hasher=hasher,
            throttle=throttle,
            clock=FixedClock(START),
            common_passwords=frozenset(),
        )
        for throttle in throttles
    ]
    try:
        anonymous = Context(deps[0], database, ClientInfo(ip=None, user_agent="pytest"))
        async with anonymous.transaction() as tx:
            account = await register(tx, username="ada", email=None, name="Ada", password=PASSWORD)

        def attempt(n: int, password: str) -> asyncio.Task[PasswordCheck]:
            return asyncio.create_task(
                check_password(
                    Context(deps[n % 2], database, client),
                    account=account,
                    account_key=account.id,
                    password=password,
                )
            )

        async def settled(tasks: list[asyncio.Task[PasswordCheck]]) -> None:
            """Until every task is refused or held inside argon2 (a condition, not a time)."""
            for _ in range(100_000):
                if hasher.waiting + sum(task.done() for task in tasks) >= len(tasks):
                    return
                await asyncio.sleep(0.001)
            pytest.fail("the attempts never settled")

        wrong = [attempt(n, WRONG) for n in range(12)]
        await settled(wrong)
        # Twelve wrong guesses are in flight (none has finished argon2): now the right one.
        right = attempt(12, PASSWORD)
        await settled([*wrong, right])
        hasher.gate.set()
        checks = await asyncio.gather(*wrong, right)
    finally:
        hasher.gate.set()
        await database.dispose()
    assert Counter(check.reason for check in checks[:12]) == {
        "wrong_password": BUDGET,
        "throttled": 12 - BUDGET,
    }
    assert checks[12].reason == "throttled"
    assert hasher.verifications == BUDGET  # argon2 ran for the budget only
