"""security.md item 23 on SQLite: another process holds the write lock past the busy timeout.

Like a backup tool or a second server on the same file: while the lock is held, every
request that needs the database waits the busy timeout (1 s here: `?timeout=1` in the
URL) and then answers 503 with Retry-After, writing nothing and logging one warning; once
the lock is released the same server process works again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.reliability.harness import PASSWORD, problem_of_503, server_env, serving, tracebacks

BUSY_TIMEOUT_SECONDS = 1


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock on ``path`` from another connection until the block ends."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def registration(username: str) -> dict[str, str]:
    return {
        "username": username,
        "email": f"{username}@example.com",
        "name": username.title(),
        "password": PASSWORD,
    }


def usernames(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT username FROM accounts ORDER BY 1")]


@pytest.mark.slow
async def test_sec23_sqlite_lock_past_the_busy_timeout_is_503_then_works(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    url = f"sqlite+aiosqlite:///{path.as_posix()}?timeout={BUSY_TIMEOUT_SECONDS}"
    with serving(tmp_path, server_env(tmp_path / "var", database_url=url)) as (base, log):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            created = await client.post("/api/v1/accounts", json=registration("before"))
            assert created.status_code == 201, created.text
            signed_in = await client.post(
                "/api/v1/sessions", json={"username": "before", "password": PASSWORD}
            )
            token = signed_in.json()["session"]["token"]
            me = {"Authorization": f"Bearer {token}"}
            with write_lock_held(path):
                # Four at once: one waits for SQLite, three for their turn in the process;
                # both waits end at the busy timeout.
                parallel = await asyncio.gather(
                    *(
                        client.post("/api/v1/accounts", json=registration(f"locked{i}"))
                        for i in range(4)
                    )
                )
                # A session check only reads (no write lock; its touch is not due yet):
                # it is answered while the writer holds the file (issue 11).
                checked = await client.get("/api/v1/me", headers=me)
                one_by_one = [
                    await client.post(
                        "/api/v1/sessions", json={"username": "before", "password": PASSWORD}
                    ),
                    await client.get("/register"),
                ]
                ready = await client.get("/ready")  # /health does no I/O: still 200
                health = await client.get("/health")
            refused = [*parallel, *one_by_one]
            assert [problem_of_503(r) for r in refused] == [None] * len(refused), [
                (r.status_code, r.text[:200]) for r in refused
            ]
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
            assert ready.status_code == 503, ready.text
            assert ready.json()["failing"] == ["database"]
            assert checked.status_code == 200, checked.text

            # Released: the same process serves again, and the refused writes never happened.
            again = await client.post("/api/v1/accounts", json=registration("after"))
            assert again.status_code == 201, again.text
            assert (await client.get("/api/v1/me", headers=me)).status_code == 200
            assert (await client.get("/ready")).status_code == 200
    assert usernames(path) == ["after", "before"]
    text = log.read_text()
    assert tracebacks(log) == 0, text[-3000:]
    assert 1 <= text.count("database unavailable") <= 2, text[-3000:]
