"""Connection reuse, measured: a real uvicorn server on a loopback port counts TCP connections.

Each HTTP request's ASGI scope carries the client's (host, port); one port is one TCP
connection. No mock decides the answer: the pool either reuses sockets or it does not.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from lwa_accounts.lwa.client import LwaClient
from lwa_accounts.settings import Settings

WEB = "amzn1.application-oa2-client.web"
USER = "amzn1.account.AHQG2JPGF47GOIO4WYGDWAHKTIVA"
TOKEN = "Atza|" + "t" * 360


@dataclass
class TinyAmazon:
    """Just enough of tokeninfo and profile, plus a record of client sockets."""

    clients: set[tuple[str, int]] = field(default_factory=set)
    requests: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        client = scope["client"]
        self.clients.add((client[0], client[1]))
        if scope["path"] == "/auth/o2/tokeninfo":
            body: dict[str, Any] = {"aud": WEB, "user_id": USER, "exp": 3000, "iat": 1}
        else:
            body = {"user_id": USER, "name": "Ada", "email": "ada@example.com"}
        await asyncio.sleep(0.002)  # a little latency so concurrent calls really overlap
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
async def amazon() -> AsyncIterator[tuple[TinyAmazon, str]]:
    app = TinyAmazon()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it uvicorn's separate header and body writes
    # stall 40 ms on delayed ACKs for every keep-alive request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_keep_alive=30
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _settings(url: str, pool: int) -> Settings:
    return Settings(lwa_client_id=WEB, lwa_api_url=url, lwa_max_connections=pool)


async def test_sequential_verifications_reuse_two_connections(
    amazon: tuple[TinyAmazon, str],
) -> None:
    app, url = amazon
    async with LwaClient(_settings(url, pool=20)) as client:
        for _ in range(100):
            assert (await client.verify_and_fetch(TOKEN)).user_id == USER
    assert app.requests == 200
    # tokeninfo and profile run concurrently, so two sockets, kept alive for all 100.
    assert len(app.clients) <= 2


async def test_concurrent_verifications_never_exceed_the_pool(
    amazon: tuple[TinyAmazon, str],
) -> None:
    app, url = amazon
    async with LwaClient(_settings(url, pool=8)) as client:
        results = await asyncio.gather(*(client.verify_and_fetch(TOKEN) for _ in range(100)))
    assert {r.user_id for r in results} == {USER}
    assert app.requests == 200
    assert 2 <= len(app.clients) <= 8


async def test_measurement_detects_a_client_per_call(amazon: tuple[TinyAmazon, str]) -> None:
    """Control: without a shared client every verification opens new connections."""
    app, url = amazon
    for _ in range(10):
        async with LwaClient(_settings(url, pool=8)) as client:
            await client.verify_and_fetch(TOKEN)
    assert len(app.clients) == 20
