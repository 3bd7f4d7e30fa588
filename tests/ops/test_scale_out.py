"""docs/operations.md "Scale out": two `lwa-accounts serve` processes on one PostgreSQL and
one Redis behave as one service, with no sticky sessions.

As the page says to deploy: a fresh database migrated once by `lwa-accounts db upgrade`
before any server starts, then hosts A and B with the same settings (database, Redis,
secret key, Amazon client ids; each its own PUBLIC_URL only because both run on loopback).
Every journey starts on one host and finishes on the other: a bearer session, a browser
session with its CSRF token, a throttle lockout, an Amazon link step, a TV's device grant.
A third host with another secret key shows why the key must be the same everywhere.
Amazon is one standalone emulator (`lwa-accounts emulator serve`), so a token minted
there is good on both hosts, as amazon.com's would be. The Redis keys live under a
prefix of this module's own (LWA_ACCOUNTS_REDIS_KEY_PREFIX) and are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager

from lwa_accounts.settings import Settings
from lwa_accounts.store import migrate
from lwa_accounts.web.app import create_app
from tests.conftest import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    REDIS_URL,
    _database_url,
    _in_thread,
    _new_database_name,
    require_service,
)
from tests.ops.harness import (
    PASSWORD,
    amazon_customer,
    amazon_settings,
    bearer,
    browser_sign_in,
    confirm_email,
    form_post,
    me,
    mint,
    password_sign_in,
    register,
    server_env,
    serving,
    session_token,
    standalone_amazon,
)
from tests.processes import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SECRET_KEY = "scale-out-test-secret-key-0123456789abcdef"


@dataclass(frozen=True)
class Hosts:
    a: str
    b: str
    amazon: str
    shared: dict[str, str]  # the settings every host has in common
    tmp_path: Path


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    require_service("Redis", "127.0.0.1", 6379)
    tmp_path = tmp_path_factory.mktemp("scale-out")
    name = _new_database_name()
    prefix = f"lwa-ops-test-{uuid.uuid4().hex[:12]}"
    _in_thread(f'CREATE DATABASE "{name}"')
    try:
        with ExitStack() as stack, standalone_amazon(tmp_path) as amazon:
            shared = {
                "database_url": _database_url(name),
                "redis_url": REDIS_URL,
                "redis_key_prefix": prefix,
                "secret_key": SECRET_KEY,
                "device_poll_interval_seconds": "1",
                **amazon_settings(amazon),
            }
            # Migrate once, before any server starts (the page's first step).
            migrated = run_cli("db", "upgrade", env=server_env(tmp_path / "migrate", **shared))
            assert migrated.returncode == 0, migrated.stderr
            current = run_cli("db", "current", env=server_env(tmp_path / "migrate", **shared))
            assert f"current: {migrate.head()}" in current.stdout, current.stdout
            a = stack.enter_context(serving(tmp_path, "a", server_env(tmp_path / "a", **shared)))
            b = stack.enter_context(serving(tmp_path, "b", server_env(tmp_path / "b", **shared)))
            yield Hosts(a=a, b=b, amazon=amazon, shared=shared, tmp_path=tmp_path)
    finally:
        _in_thread(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def test_a_bearer_session_made_on_a_works_on_b_and_sign_out_on_b_ends_it_on_a(
    hosts: Hosts,
) -> None:
    register(hosts.a, "bea")
    token = session_token(hosts.a, "bea")
    assert me(hosts.b, token).json()["account"]["username"] == "bea"

    signed_out = httpx.delete(hosts.b + "/api/v1/sessions/current", headers=bearer(token))
    assert signed_out.status_code == 204, signed_out.text

    assert me(hosts.a, token).status_code == 401
    assert me(hosts.b, token).status_code == 401


def test_a_browser_moves_between_hosts_with_its_cookies_and_csrf_token(hosts: Hosts) -> None:
    """No sticky sessions: the sign-in form shown by A is accepted by B, the session
    cookie B sets is honoured by A, and signing out on A ends it on B."""
    register(hosts.b, "bruno")
    with httpx.Client(timeout=30) as browser:  # one cookie jar: 127.0.0.1, any port
        signed_in = browser_sign_in(browser, hosts.b, "bruno", page_from=hosts.a)
        assert signed_in.status_code == 303, signed_in.text
        account = browser.get(hosts.a + "/account")
        assert account.status_code == 200
        assert "bruno" in account.text
        signed_out = form_post(browser, hosts.a, "/signout", {}, token_from=hosts.b)
        assert signed_out.status_code == 303, signed_out.text
        after = browser.get(hosts.b + "/account")
        assert after.status_code == 303  # back to /signin
        assert after.headers["location"].startswith("/signin")


def test_a_host_with_another_secret_key_refuses_the_others_forms(hosts: Hosts) -> None:
    """Why the secret key must be shared: a form token signed by A is a 403 on a host
    with a key of its own, and the same form posted to B (same key) goes through."""
    register(hosts.a, "carla")
    other = {**hosts.shared, "secret_key": "another-secret-key-0123456789abcdefgh"}
    with (
        serving(hosts.tmp_path, "c", server_env(hosts.tmp_path / "c", **other)) as c,
        httpx.Client(timeout=30) as browser,
    ):
        refused = browser_sign_in(browser, c, "carla", page_from=hosts.a)
        assert refused.status_code == 403, refused.text
        assert "Form expired" in refused.text  # the csrf_failed page
        accepted = browser_sign_in(browser, hosts.b, "carla", page_from=hosts.a)
        assert accepted.status_code == 303, accepted.text
        # Session tokens are stored as plain digests: they do not depend on the key.
        assert me(c, session_token(hosts.a, "carla")).status_code == 200


def test_a_throttle_lockout_built_up_on_a_refuses_on_b(hosts: Hosts) -> None:
    register(hosts.a, "dora")
    # The default budget for one account from one address: 5 per 15 minutes.
    wrong = [password_sign_in(hosts.a, "dora", f"wrong-guess-{n}") for n in range(5)]
    assert [r.status_code for r in wrong] == [401] * 5, [r.text for r in wrong]

    on_b = password_sign_in(hosts.b, "dora", PASSWORD)  # even the right password waits

    assert on_b.status_code == 429, on_b.text
    assert on_b.json()["code"] == "too_many_attempts"
    assert int(on_b.headers["retry-after"]) > 0
    assert password_sign_in(hosts.a, "dora", PASSWORD).status_code == 429


def test_an_amazon_link_step_started_on_a_completes_on_b(hosts: Hosts) -> None:
    account = register(hosts.a, "elena")
    confirm_email(hosts.b, server_env(hosts.tmp_path / "b", **hosts.shared), "elena@example.com")
    amazon_user = amazon_customer(hosts.amazon, "Elena E", "elena@example.com")
    started = httpx.post(
        hosts.a + "/api/v1/sessions/amazon",
        json={"access_token": mint(hosts.amazon, amazon_user)},
        timeout=30,
    )
    assert started.status_code == 200, started.text
    assert started.json()["result"] == "link_required"
    flow_id = started.json()["flow"]["id"]

    linked = httpx.post(
        hosts.b + "/api/v1/flows/link",
        json={"flow_id": flow_id, "password": PASSWORD},
        timeout=30,
    )

    assert linked.status_code == 201, linked.text
    assert linked.json()["account"]["id"] == account["id"]
    assert linked.json()["account"]["amazon_user_id"] == amazon_user
    # The link is the database's: the next Amazon sign-in on A signs straight in.
    again = httpx.post(
        hosts.a + "/api/v1/sessions/amazon",
        json={"access_token": mint(hosts.amazon, amazon_user)},
        timeout=30,
    )
    assert again.status_code == 201, again.text
    assert again.json()["account"]["id"] == account["id"]


def test_a_device_grant_authorized_on_a_is_approved_on_b_and_collected_on_a(
    hosts: Hosts,
) -> None:
    account = register(hosts.b, "fritz")
    grant = httpx.post(
        hosts.a + "/api/v1/device/authorize", json={"device_name": "Fritz's TV"}, timeout=30
    ).json()
    pending = httpx.post(
        hosts.a + "/api/v1/device/token", json={"device_code": grant["device_code"]}
    )
    assert pending.json()["error"] == "authorization_pending", pending.text

    with httpx.Client(timeout=30) as phone:
        assert browser_sign_in(phone, hosts.b, "fritz").status_code == 303
        shown = form_post(
            phone, hosts.b, "/activate", {"code": grant["user_code"]}, token_from=hosts.b
        )
        assert shown.status_code == 200, shown.text
        assert "Fritz&#39;s TV" in shown.text or "Fritz's TV" in shown.text
        decided = form_post(
            phone,
            hosts.b,
            "/activate/decide",
            {"code": grant["user_code"], "decision": "approve"},
            token_from=hosts.b,
        )
        assert decided.status_code == 200, decided.text
        assert "Device approved" in decided.text

    time.sleep(grant["interval"])  # one poll interval after the last poll
    collected = httpx.post(
        hosts.a + "/api/v1/device/token", json={"device_code": grant["device_code"]}
    )
    assert collected.status_code == 200, collected.text
    assert collected.json()["account"]["id"] == account["id"]
    token = collected.json()["session"]["token"]
    assert me(hosts.b, token).json()["account"]["username"] == "fritz"


def test_a_host_without_redis_counts_alone(hosts: Hosts) -> None:
    """Why Redis must be shared: a host without it keeps its counters in its own memory,
    so its lockout means nothing to the other hosts (and theirs nothing to it)."""
    register(hosts.a, "gus")
    alone = {k: v for k, v in hosts.shared.items() if k != "redis_url"}
    with serving(hosts.tmp_path, "d", server_env(hosts.tmp_path / "d", **alone)) as d:
        wrong = [password_sign_in(d, "gus", f"wrong-guess-{n}") for n in range(5)]
        assert [r.status_code for r in wrong] == [401] * 5, [r.text for r in wrong]
        assert password_sign_in(d, "gus", PASSWORD).status_code == 429
        assert password_sign_in(hosts.a, "gus", PASSWORD).status_code == 201


def test_both_hosts_are_ready_on_the_shared_database_and_redis(hosts: Hosts) -> None:
    """The load balancer's check (step 4): each host reaches the database, whose schema is
    this release's, and Redis."""
    for base in (hosts.a, hosts.b):
        ready = httpx.get(base + "/ready", timeout=30)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
        }


def test_a_production_server_does_not_migrate_by_itself(tmp_path: Path) -> None:
    """Why the page migrates once before the servers start: outside development and test
    the lifespan leaves the schema alone (several hosts starting at once must not race
    to migrate). Until `lwa-accounts db upgrade` has run, /ready keeps the balancer away."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = _new_database_name()
    _in_thread(f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(
            env="production",
            data_dir=tmp_path,
            database_url=_database_url(name),
            secret_key=SECRET_KEY,
            public_url="https://accounts.example.com",
            lwa_client_id="amzn1.application-oa2-client.0123456789abcdef0123456789abcdef",
            lwa_client_secret="web-client-secret-for-this-test-only",
            smtp_url="smtp://127.0.0.1:9",  # nothing is queued: never connected to
            mail_from="no-reply@example.com",
        )

        async def ready_before_and_after_the_upgrade() -> list[httpx.Response]:
            async with LifespanManager(create_app(settings)) as manager:
                transport = httpx.ASGITransport(app=manager.app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="https://accounts.example.com"
                ) as client:
                    before = await client.get("/ready")
                    current = await asyncio.to_thread(migrate.current, _database_url(name))
                    assert current is None  # it did not migrate by itself
                    await asyncio.to_thread(migrate.upgrade, _database_url(name))
                    return [before, await client.get("/ready")]

        before, after = asyncio.run(ready_before_and_after_the_upgrade())
        assert before.status_code == 503, before.text
        assert before.json()["failing"] == ["migrations"]
        assert before.json()["checks"] == {
            "database": "ok",
            "migrations": f"at nothing, code wants {migrate.head()}",
        }
        assert after.status_code == 200, after.text
    finally:
        _in_thread(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
