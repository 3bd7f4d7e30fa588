"""security.md item 11: parallel first sign-ins of one Amazon user, over a real server.

40 devices post a token of the same (unseen) Amazon user at once to a real `lwa-accounts
serve` process (SQLite, then PostgreSQL): every one is signed in (201), all to the same
single account, with one link, and never a 409 or a 500. On PostgreSQL a loser of the
create-and-link race used to read the facts half before and half after the winner's
commit (no link by user_id, yet the email's account linked to "another" Amazon user: the
winner's own link) and answered 409 ``email_account_linked_to_other_amazon``.

The race depends on timing, so each test runs several rounds (each with a fresh Amazon
user) and counts how often the conflict path ran, from the ``amazon.signin_conflict``
audit events; ``tests/flows/test_sign_in_conflict.py`` forces the interleaving
deterministically.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID
from tests.processes import CLI, free_port, running_server

PARALLEL = 40
ROUNDS = 3
CONTROL = "/_amazon/_emulator"
CONFLICT_EVENT = "amazon.signin_conflict"

pytestmark = pytest.mark.slow


def _environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
        }
    )
    if database_url is not None:
        env["LWA_ACCOUNTS_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def serve(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    database_url: str | None = getattr(request, "param", None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_environment(tmp_path / "var", database_url),
        ready_url=base + "/health",
        log=tmp_path / "serve.log",
    ):
        yield base


async def _new_customer(client: httpx.AsyncClient, n: int) -> str:
    created = await client.post(
        f"{CONTROL}/customers",
        json={"name": f"Racer {n}", "email": f"racer{n}@example.com", "password": "pw-racer"},
    )
    assert created.status_code == 201, created.text
    user_id: str = created.json()["user_id"]
    return user_id


async def _mint(client: httpx.AsyncClient, user_id: str) -> str:
    minted = await client.post(
        f"{CONTROL}/tokens", json={"user_id": user_id, "client_id": EMULATED_DEVICE_CLIENT_ID}
    )
    assert minted.status_code == 201, minted.text
    token: str = minted.json()["access_token"]
    return token


async def _rounds(base: str) -> list[str]:
    """Run the rounds; the Amazon user ids raced for."""
    limits = httpx.Limits(max_connections=PARALLEL, max_keepalive_connections=PARALLEL)
    raced: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        for n in range(ROUNDS):
            user_id = await _new_customer(client, n)
            raced.append(user_id)
            tokens = [await _mint(client, user_id) for _ in range(PARALLEL)]
            answers = await asyncio.gather(
                *(
                    client.post("/api/v1/sessions/amazon", json={"access_token": token})
                    for token in tokens
                )
            )
            statuses = sorted(answer.status_code for answer in answers)
            assert statuses == [201] * PARALLEL, [a.text for a in answers if a.status_code != 201]
            bodies = [answer.json() for answer in answers]
            assert {body["result"] for body in bodies} == {"signed_in"}
            assert len({body["account"]["id"] for body in bodies}) == 1
            assert sum(body["created"] for body in bodies) == 1
            assert {body["account"]["amazon_user_id"] for body in bodies} == {user_id}
    return raced


def _check_rows(rows: list[tuple[str, str]], raced: list[str]) -> None:
    """One link per raced Amazon user, each to an account of its own."""
    links = dict(rows)
    assert sorted(links) == sorted(raced)
    assert len(set(links.values())) == len(raced)


def _report(conflicts: int) -> None:
    # How often a sign-in lost the create-and-link race and looked again (timing-dependent).
    print(f"conflict path ran {conflicts} times in {ROUNDS} rounds of {PARALLEL}")


@pytest.mark.parametrize("serve", [None], indirect=True)
async def test_sec11_parallel_first_signins_sqlite_server(serve: str, tmp_path: Path) -> None:
    raced = await _rounds(serve)
    database = sqlite3.connect(tmp_path / "var" / "lwa-accounts.db")
    try:
        rows = database.execute("SELECT amazon_user_id, account_id FROM amazon_identities")
        _check_rows([(str(user), str(account)) for user, account in rows], raced)
        (accounts,) = database.execute("SELECT count(*) FROM accounts").fetchone()
        (conflicts,) = database.execute(
            "SELECT count(*) FROM audit_events WHERE kind = ?", (CONFLICT_EVENT,)
        ).fetchone()
    finally:
        database.close()
    assert accounts == ROUNDS
    _report(conflicts)


@pytest.fixture
def postgres_serve(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_environment(tmp_path / "var", postgres_url),
        ready_url=base + "/health",
        log=tmp_path / "serve.log",
    ):
        yield base, postgres_url


@pytest.mark.postgres
async def test_sec11_parallel_first_signins_postgres_server(
    postgres_serve: tuple[str, str],
) -> None:
    base, url = postgres_serve
    raced = await _rounds(base)
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await connection.fetch("SELECT amazon_user_id, account_id FROM amazon_identities")
        _check_rows([(str(row[0]), str(row[1])) for row in rows], raced)
        accounts = await connection.fetchval("SELECT count(*) FROM accounts")
        conflicts = await connection.fetchval(
            "SELECT count(*) FROM audit_events WHERE kind = $1", CONFLICT_EVENT
        )
    finally:
        await connection.close()
    assert accounts == ROUNDS
    _report(conflicts)
