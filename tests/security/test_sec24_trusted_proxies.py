"""security.md item 24 (issue 9 hole 7): the client address comes from X-Forwarded-For
only when the peer is a configured trusted proxy (``LWA_ACCOUNTS_TRUSTED_PROXIES``, empty
by default). Per-IP limits and the audit log use that address - so, by default, rotating
X-Forwarded-For values does not escape a per-IP limit nor forge the audited IP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.web.app import create_app
from tests.processes import CLI, free_port, running_server
from tests.web.conftest import BASE_URL, PASSWORD, make_settings

LIMIT = 3  # registrations per IP per hour in these tests
SPOOFED = [f"203.0.113.{n}" for n in range(1, LIMIT + 2)]  # one more than the limit


@asynccontextmanager
async def app_client(
    settings: Settings, *, peer: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, reached from ``peer`` (the TCP peer address the server saw)."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=(peer, 51000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


def limited_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(tmp_path, registration_limit_per_ip=f"{LIMIT}/hour", **overrides)


def account(n: int) -> dict[str, str]:
    return {
        "username": f"user{n}",
        "email": f"user{n}@example.com",
        "name": "Someone",
        "password": PASSWORD,
    }


async def register_from(client: httpx.AsyncClient, forwarded: list[str]) -> list[int]:
    """One registration per X-Forwarded-For value; the status codes."""
    codes = []
    for n, address in enumerate(forwarded):
        response = await client.post(
            "/api/v1/accounts", json=account(n), headers={"X-Forwarded-For": address}
        )
        codes.append(response.status_code)
    return codes


async def audited_ip(client: httpx.AsyncClient, settings: Settings, forwarded: str) -> str | None:
    """The IP the audit log records for a refused (forged-state) Amazon callback."""
    response = await client.get(
        "/auth/amazon/callback?code=c&state=forged", headers={"X-Forwarded-For": forwarded}
    )
    assert response.status_code == 400
    database = Database.from_settings(settings)
    try:
        async with database.transaction() as stores:
            events = await stores.audit.list(limit=1)
    finally:
        await database.dispose()
    assert events
    assert "bad_state" in (events[0].detail or "")
    return events[0].ip


async def test_sec24_rotating_x_forwarded_for_does_not_escape_the_per_ip_limit(
    tmp_path: Path,
) -> None:
    settings = limited_settings(tmp_path)
    assert settings.trusted_proxies == ()  # the default: trust no proxy, even on loopback
    async with app_client(settings) as client:
        assert await register_from(client, SPOOFED) == [201] * LIMIT + [429]
        assert await audited_ip(client, settings, "198.51.100.77") == "127.0.0.1"


async def test_sec24_a_configured_proxy_supplies_the_client_address(tmp_path: Path) -> None:
    settings = limited_settings(tmp_path, trusted_proxies="10.0.0.0/24,192.0.2.1")
    async with app_client(settings, peer="10.0.0.5") as client:
        # Each forwarded client has a bucket of its own.
        assert await register_from(client, SPOOFED) == [201] * (LIMIT + 1)
        assert await audited_ip(client, settings, "198.51.100.77") == "198.51.100.77"
        # The proxy appends the address it saw; what the client wrote before it is not
        # believed: the rightmost address that is not a trusted proxy is the client.
        chain = "6.6.6.6, 198.51.100.80, 192.0.2.1"
        assert await audited_ip(client, settings, chain) == "198.51.100.80"


async def test_sec24_x_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    settings = limited_settings(tmp_path, trusted_proxies="10.0.0.0/24")
    async with app_client(settings, peer="192.0.2.50") as client:
        assert await register_from(client, SPOOFED) == [201] * LIMIT + [429]
        assert await audited_ip(client, settings, "10.0.0.7") == "192.0.2.50"


def test_sec24_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        make_settings(tmp_path, trusted_proxies="proxy.internal")


# ---- over a real server process --------------------------------------------------------


def _environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    if "LWA_ACCOUNTS_DATABASE_URL" in os.environ:  # LWA_TEST_DATABASE=postgres
        env["LWA_ACCOUNTS_DATABASE_URL"] = os.environ["LWA_ACCOUNTS_DATABASE_URL"]
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            "LWA_ACCOUNTS_REGISTRATION_LIMIT_PER_IP": f"{LIMIT}/hour",
            **extra,
        }
    )
    return env


Serve = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def serve(tmp_path: Path) -> Serve:
    @contextmanager
    def start(name: str, **extra: str) -> Iterator[str]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running_server(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_environment(tmp_path / name, **extra),
            ready_url=base + "/health",
            log=tmp_path / f"{name}.log",
        ):
            yield base

    return start


def _register_over_http(base: str) -> list[int]:
    with httpx.Client(base_url=base, timeout=20) as client:
        return [
            client.post(
                "/api/v1/accounts", json=account(n), headers={"X-Forwarded-For": address}
            ).status_code
            for n, address in enumerate(SPOOFED)
        ]


@pytest.mark.slow
def test_sec24_real_server_trusts_no_loopback_proxy_by_default(serve: Serve) -> None:
    with serve("default") as base:
        assert _register_over_http(base) == [201] * LIMIT + [429]


@pytest.mark.slow
def test_sec24_real_server_trusts_a_configured_proxy(serve: Serve) -> None:
    with serve("trusting", LWA_ACCOUNTS_TRUSTED_PROXIES="127.0.0.1") as base:
        assert _register_over_http(base) == [201] * (LIMIT + 1)
