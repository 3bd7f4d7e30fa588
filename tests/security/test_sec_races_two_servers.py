"""The races of items 7, 11, 12 and 16 across TWO real server processes sharing PostgreSQL and
Redis, as a scaled-out deployment runs.

One standalone emulated Amazon (``lwa-accounts emulator serve``) serves both servers
(``LWA_ACCOUNTS_LWA_API_URL``, with the emulator's client ids configured), so a token minted
there is good on either. Requests of one race alternate between the servers; the database
alone decides who wins, and every test counts outcomes, never timings. The three processes
start once per module (about 10-20 s on a loaded machine, hence ``slow``); each test uses
its own accounts and Amazon customers and counts only their rows.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
    Settings,
)
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import queued_mail
from tests.conftest import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    REDIS_URL,
    _database_url,
    _in_thread,
    _new_database_name,
    require_service,
)
from tests.e2e.amazon_harness import PASSWORD, confirm_by_link
from tests.processes import CLI, free_port, running_server
from tests.security.api_calls import link_flow
from tests.security.races import PARALLEL, describe, statuses
from tests.security.service import (
    ATTACKER_PASSWORD,
    CSRF_RE,
    bearer,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SECRET_KEY = "two-servers-secret-key-0123456789abcdef"
# Odd limits far above the races: the `limits` keys in the shared Redis then differ from
# any other test's, and the throttle never decides these races.
LIMITS = {
    "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT_IP": "991/15minutes",
    "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT": "997/15minutes",
    "LWA_ACCOUNTS_PASSWORD_LIMIT_PER_IP": "9973/15minutes",
    "LWA_ACCOUNTS_REGISTRATION_LIMIT_PER_IP": "9967/hour",
    "LWA_ACCOUNTS_USER_CODE_LIMIT_PER_IP": "9949/10minutes",
    "LWA_ACCOUNTS_USER_CODE_LIMIT_PER_CODE": "9941/10minutes",
    "LWA_ACCOUNTS_DEVICE_START_LIMIT_PER_IP": "9931/10minutes",
    "LWA_ACCOUNTS_FLOW_MAX_PASSWORD_ATTEMPTS": "50",
    # Registrations' verification mails: a spent budget would send none to confirm.
    "LWA_ACCOUNTS_EMAIL_LIMIT_PER_IP": "9923/hour",
    "LWA_ACCOUNTS_EMAIL_LIMIT_PER_ACCOUNT": "9907/hour",
}


def _environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_ENV": "test",
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


@dataclass
class Deployment:
    amazon: str  # the emulator's base URL
    servers: tuple[str, str]
    database_url: str
    data_dir: Path

    def base(self, i: int) -> str:
        return self.servers[i % 2]


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this module's servers (the per-test ``postgres_url``
    would restart three processes per test)."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = _new_database_name()
    _in_thread(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        _in_thread(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, postgres_database: str
) -> Iterator[Deployment]:
    """One Amazon and two servers for the whole module; the tests use disjoint accounts."""
    require_service("Redis", "127.0.0.1", 6379)
    tmp_path = tmp_path_factory.mktemp("two-servers")
    postgres_url = postgres_database
    amazon_port = free_port()
    amazon = f"http://127.0.0.1:{amazon_port}"
    with ExitStack() as stack:
        stack.enter_context(
            running_server(
                [*CLI, "emulator", "serve", "--host", "127.0.0.1", "--port", str(amazon_port)],
                env=_environment(tmp_path / "amazon"),
                ready_url=amazon + "/_emulator/clock",
                log=tmp_path / "amazon.log",
            )
        )
        bases = []
        for name in ("a", "b"):  # one after the other: the first migrates the database
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = _environment(
                tmp_path / name,
                LWA_ACCOUNTS_DATABASE_URL=postgres_url,
                LWA_ACCOUNTS_REDIS_URL=REDIS_URL,
                LWA_ACCOUNTS_SECRET_KEY=SECRET_KEY,
                LWA_ACCOUNTS_PUBLIC_URL=base,
                # A configured client (the emulator's own ids): no embedded emulator, so
                # both servers ask the one standalone Amazon.
                LWA_ACCOUNTS_LWA_CLIENT_ID=EMULATED_WEB_CLIENT_ID,
                LWA_ACCOUNTS_LWA_CLIENT_SECRET=EMULATED_WEB_CLIENT_SECRET,
                LWA_ACCOUNTS_LWA_DEVICE_CLIENT_ID=EMULATED_DEVICE_CLIENT_ID,
                LWA_ACCOUNTS_LWA_API_URL=amazon,
                LWA_ACCOUNTS_LWA_AUTHORIZE_URL=amazon + "/ap/oa",
                LWA_ACCOUNTS_ARGON2_MEMORY_KIB="64",
                LWA_ACCOUNTS_ARGON2_TIME_COST="1",
                LWA_ACCOUNTS_DEVICE_POLL_INTERVAL_SECONDS="1",
                **LIMITS,
            )
            stack.enter_context(
                running_server(
                    [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    ready_url=base + "/health",
                    log=tmp_path / f"server-{name}.log",
                )
            )
            bases.append(base)
        yield Deployment(
            amazon=amazon,
            servers=(bases[0], bases[1]),
            database_url=postgres_url,
            data_dir=tmp_path,
        )


@pytest.fixture
async def clients(deployment: Deployment) -> AsyncIterator[Clients]:
    async with AsyncExitStack() as stack:
        engine = create_async_engine(deployment.database_url)
        stack.push_async_callback(engine.dispose)
        yield Clients(deployment, stack, engine)


class Clients:
    """New HTTP clients (own cookie jars) for either server, and the shared database."""

    def __init__(self, deployment: Deployment, stack: AsyncExitStack, engine: AsyncEngine):
        self.deployment = deployment
        self._stack = stack
        self.engine = engine

    async def to(self, i: int) -> httpx.AsyncClient:
        """A client of server ``i % 2``."""
        return await self._stack.enter_async_context(
            httpx.AsyncClient(base_url=self.deployment.base(i), timeout=30)
        )

    async def count(self, sql_from: str, **params: Any) -> int:
        async with self.engine.connect() as conn:
            query = text(f"SELECT count(*) FROM {sql_from}")  # noqa: S608 - the tests' own SQL
            value = (await conn.execute(query, params)).scalar()
        return int(value or 0)

    async def confirm_email(self, address: str) -> None:
        """The owner opens the last verification mail to ``address`` (read from the shared
        database) and confirms on server B: only a confirmed address is a link target."""
        database = Database(
            self.deployment.database_url,
            settings=Settings(env="test", secret_key=SECRET_KEY, data_dir=self.deployment.data_dir),
        )
        try:
            mail = [m for m in await queued_mail(database, address) if m.kind == "verify_email"]
        finally:
            await database.dispose()
        await confirm_by_link(await self.to(1), mail[-1])

    async def customer(self, name: str, email: str) -> str:
        """A new customer at the shared Amazon; returns the Amazon user id."""
        async with httpx.AsyncClient(base_url=self.deployment.amazon, timeout=30) as amazon:
            response = await amazon.post(
                "/_emulator/customers", json={"name": name, "email": email, "password": "pw"}
            )
        assert response.status_code == 201, response.text
        user_id: str = response.json()["user_id"]
        return user_id

    async def mint(self, user_id: str) -> str:
        async with httpx.AsyncClient(base_url=self.deployment.amazon, timeout=30) as amazon:
            response = await amazon.post(
                "/_emulator/tokens",
                json={
                    "user_id": user_id,
                    "client_id": EMULATED_DEVICE_CLIENT_ID,
                    "scope": "profile postal_code",
                },
            )
        assert response.status_code == 201, response.text
        token: str = response.json()["access_token"]
        return token


async def _register(
    client: httpx.AsyncClient, username: str, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/accounts",
        json={"username": username, "email": email, "name": username, "password": password},
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


async def _password_token(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post(
        "/api/v1/sessions", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["session"]["token"]
    return token


async def _form(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    page = await client.get("/signin")
    found = CSRF_RE.search(page.text)
    assert found, page.text
    return await client.post(path, data={**data, "csrf_token": found.group(1)})


async def test_sec07_parallel_link_confirmations_across_two_servers(clients: Clients) -> None:
    tv = await clients.to(0)
    amazon_user = await clients.customer("Lin Link", "lin@example.com")
    account = await _register(tv, "lin", "lin@example.com")
    await clients.confirm_email("lin@example.com")
    token = await clients.mint(amazon_user)
    outcome = await tv.post("/api/v1/sessions/amazon", json={"access_token": token})
    assert outcome.json().get("result") == "link_required", outcome.text
    flow_id = outcome.json()["flow"]["id"]
    racers = [await clients.to(i) for i in range(PARALLEL)]

    responses = await asyncio.gather(*(link_flow(c, flow_id, PASSWORD) for c in racers))

    counted = statuses(responses)
    assert counted[201] == 1, describe(responses)
    assert set(counted) <= {201, 409, 410}, describe(responses)
    mine = {"id": account["id"]}
    assert await clients.count("amazon_identities WHERE account_id = :id", **mine) == 1
    assert await clients.count("amazon_identities WHERE amazon_user_id = :u", u=amazon_user) == 1
    spent = "pending_flows WHERE target_account_id = :id AND status = 'spent'"
    assert await clients.count(spent, **mine) == 1
    live = "sessions WHERE account_id = :id AND revoked_at IS NULL"
    assert await clients.count(live, **mine) == 1
    linked = "audit_events WHERE kind = 'amazon.linked' AND account_id = :id"
    assert await clients.count(linked, **mine) == 1


async def test_sec12_parallel_detach_across_two_servers(clients: Clients) -> None:
    first = await clients.to(0)
    amazon_user = await clients.customer("Dee Tach", "dee@example.com")
    account = await _register(first, "dee", "dee@example.com")
    token = await _password_token(first, "dee")
    attached = await first.post(
        "/api/v1/me/amazon",
        json={"access_token": await clients.mint(amazon_user)},
        headers=bearer(token),
    )
    assert attached.status_code == 200, attached.text
    # Sessions opened after the attach (attaching ended the account's other sessions: item 9).
    tokens = [token] + [
        await _password_token(await clients.to(i), "dee") for i in range(1, PARALLEL)
    ]
    racers = [await clients.to(i) for i in range(PARALLEL)]

    responses = await asyncio.gather(
        *(
            c.delete("/api/v1/me/amazon", headers=bearer(t))
            for c, t in zip(racers, tokens, strict=True)
        )
    )

    assert statuses(responses) == {204: 1, 404: PARALLEL - 1}, describe(responses)
    mine = {"id": account["id"]}
    assert await clients.count("amazon_identities WHERE account_id = :id", **mine) == 0
    unlinked = "audit_events WHERE kind = 'amazon.unlinked' AND account_id = :id"
    assert await clients.count(unlinked, **mine) == 1

    # Amazon-only: refused on both servers, every time.
    only_amazon = await clients.customer("Ona Only", "ona@example.com")
    amazon_tokens = []
    for i in range(PARALLEL):
        signed_in = await (await clients.to(i)).post(
            "/api/v1/sessions/amazon", json={"access_token": await clients.mint(only_amazon)}
        )
        assert signed_in.status_code == 201, signed_in.text
        amazon_tokens.append(signed_in.json()["session"]["token"])
    refused = await asyncio.gather(
        *(
            c.delete("/api/v1/me/amazon", headers=bearer(t))
            for c, t in zip(racers, amazon_tokens, strict=True)
        )
    )
    assert statuses(refused) == {409: PARALLEL}, describe(refused)
    kept = "amazon_identities WHERE amazon_user_id = :u"
    assert await clients.count(kept, u=only_amazon) == 1


async def test_sec16_one_user_code_approved_from_two_accounts_across_two_servers(
    clients: Clients,
) -> None:
    tv = await clients.to(0)
    ada_phone = await clients.to(0)
    mallory_phone = await clients.to(1)
    ada = await _register(ada_phone, "tessa", "tessa@example.com")
    mallory = await _register(mallory_phone, "mallory", "mallory@evil.example", ATTACKER_PASSWORD)
    for phone, (name, password) in (
        (ada_phone, ("tessa", PASSWORD)),
        (mallory_phone, ("mallory", ATTACKER_PASSWORD)),
    ):
        signed_in = await _form(
            phone, "/signin", {"username": name, "password": password, "next": "/account"}
        )
        assert signed_in.status_code == 303, signed_in.text
    grant = (await tv.post("/api/v1/device/authorize", json={"device_name": "Tessa's TV"})).json()
    decide = {"code": grant["user_code"], "decision": "approve"}
    phones = [ada_phone, mallory_phone] * (PARALLEL // 2)

    responses = await asyncio.gather(*(_form(p, "/activate/decide", decide) for p in phones))

    counted = statuses(responses)
    assert counted[200] == 1, describe(responses)
    assert counted[400] + counted[410] == len(phones) - 1, describe(responses)
    won = next(i for i, r in enumerate(responses) if r.status_code == 200)
    assert "Device approved" in responses[won].text
    winner = ada if phones[won] is ada_phone else mallory
    both = {"a": ada["id"], "m": mallory["id"]}
    approved = "audit_events WHERE kind = 'device.approved' AND account_id IN (:a, :m)"
    assert await clients.count(approved, **both) == 1

    # The TV polls both servers in parallel until it is signed in: exactly one session.
    pollers = [await clients.to(i) for i in range(PARALLEL)]
    body = {"device_code": grant["device_code"]}
    sessions: list[dict[str, Any]] = []
    for _ in range(20):
        polls = await asyncio.gather(*(p.post("/api/v1/device/token", json=body) for p in pollers))
        sessions += [r.json() for r in polls if r.status_code == 200]
        errors = {r.json().get("error") for r in polls if r.status_code != 200}
        if "invalid_grant" in errors or sessions:
            break  # collected (in this round or an earlier one)
        assert errors <= {"authorization_pending", "slow_down"}, describe(polls)
        await asyncio.sleep(grant["interval"] + 0.5)  # one poll interval, not a race
    assert len(sessions) == 1, sessions
    assert sessions[0]["account"]["id"] == winner["id"]
    devices = "sessions WHERE kind = 'device' AND account_id IN (:a, :m)"
    assert await clients.count(devices, **both) == 1


async def test_sec11_parallel_first_sign_ins_across_two_servers(clients: Clients) -> None:
    """One Amazon user's first sign-in sent to both servers at once: one account, one link,
    and every request signed in to it (a loser of the create race looks again)."""
    amazon_user = await clients.customer("Fay First", "fay@example.com")
    tokens = [await clients.mint(amazon_user) for _ in range(PARALLEL)]
    racers = [await clients.to(i) for i in range(PARALLEL)]

    responses = await asyncio.gather(
        *(
            c.post("/api/v1/sessions/amazon", json={"access_token": t})
            for c, t in zip(racers, tokens, strict=True)
        )
    )

    assert statuses(responses) == {201: PARALLEL}, describe(responses)
    accounts = {r.json()["account"]["id"] for r in responses}
    assert len(accounts) == 1, accounts
    assert sum(r.json()["created"] for r in responses) == 1, describe(responses)
    linked = "amazon_identities WHERE amazon_user_id = :u"
    assert await clients.count(linked, u=amazon_user) == 1
    assert await clients.count("accounts WHERE email = :e", e="fay@example.com") == 1
