"""security.md item 23 for Redis, the shared store of the rate-limit counters.

The documented behaviour: with Redis down, every rate-limited action (password sign-in,
registration, the Amazon link step, TV code entry) fails closed with 503 + Retry-After
and does nothing, because without its counters the service cannot tell a person from a
password-guessing script; requests that are not rate-limited (a device reading /api/v1/me
with its token) go on working. When Redis is back the same server process uses it again
(the counters start empty: Redis runs without persistence here).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.harness import PASSWORD, problem_of_503, server_env, serving, tracebacks
from tests.reliability.throwaway import private_redis

RECOVERY_TIMEOUT = 15.0


def signin_form(client: httpx.Client) -> dict[str, str]:
    page = client.get("/signin")
    assert page.status_code == 200
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return {"csrf_token": csrf, "next": "", "username": "ada", "password": PASSWORD}


def account(username: str) -> dict[str, str]:
    return {
        "username": username,
        "email": f"{username}@example.com",
        "name": username.title(),
        "password": PASSWORD,
    }


def sign_in(client: httpx.Client, password: str) -> httpx.Response:
    return client.post("/api/v1/sessions", json={"username": "ada", "password": password})


@pytest.mark.slow
def test_sec23_redis_killed_fails_closed_with_503_and_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with private_redis() as redis:
        env = server_env(data_dir, redis_url=redis.url)
        with (
            serving(tmp_path, env) as (base, log),
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            registered = client.post(
                "/api/v1/accounts",
                json={
                    "username": "ada",
                    "email": "ada@example.com",
                    "name": "Ada",
                    "password": PASSWORD,
                },
            )
            assert registered.status_code == 201, registered.text
            signed_in = client.post(
                "/api/v1/sessions", json={"username": "ada", "password": PASSWORD}
            )
            assert signed_in.status_code == 201, signed_in.text
            me = {"Authorization": f"Bearer {signed_in.json()['session']['token']}"}
            form = signin_form(client)

            redis.kill()
            refused = [
                sign_in(client, PASSWORD),
                # A wrong guess is not judged either: no 401, no argon2, nothing counted.
                client.post(
                    "/api/v1/sessions", json={"username": "ada", "password": "wrong-guess-1"}
                ),
                client.post(
                    "/api/v1/accounts",
                    json={
                        "username": "eve",
                        "email": "eve@example.com",
                        "name": "Eve",
                        "password": PASSWORD,
                    },
                ),
                client.post("/signin", data=form),
            ]
            assert [problem_of_503(r) for r in refused] == [None] * len(refused), [
                (r.status_code, r.text[:200]) for r in refused
            ]
            # Not rate-limited: still served from the database.
            assert client.get("/api/v1/me", headers=me).status_code == 200

            redis.start()  # same port, empty
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while True:
                again = client.post(
                    "/api/v1/sessions", json={"username": "ada", "password": PASSWORD}
                )
                if again.status_code == 201:
                    break
                assert problem_of_503(again) is None, again.text
                assert time.monotonic() < deadline, "still refused after Redis came back"
                time.sleep(0.2)
            created = client.post(
                "/api/v1/accounts",
                json={
                    "username": "bob",
                    "email": "bob@example.com",
                    "name": "Bob",
                    "password": PASSWORD,
                },
            )
            assert created.status_code == 201, created.text

    with sqlite3.connect(data_dir / "lwa-accounts.db") as db:
        names = [row[0] for row in db.execute("SELECT username FROM accounts ORDER BY 1")]
    assert names == ["ada", "bob"]  # the refused registration wrote nothing
    assert tracebacks(log) == 0, log.read_text()[-3000:]
