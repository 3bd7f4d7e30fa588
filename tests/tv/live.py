"""A live server for device tests: real uvicorn on a free loopback port, in a thread,
with the embedded emulated Amazon at /_amazon and a FixedClock the test moves."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from lwa_accounts.clock import FixedClock
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing import offline_settings
from lwa_accounts.testing.mail import queued_mail
from lwa_accounts.web.app import create_app
from tests.e2e.amazon_harness import confirm_by_link
from tests.tv.harness import PASSWORD, START


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SteerableClock:
    """Real time plus an offset the test can move forward (browser tests, where the page's
    own timers run in real time but the server must believe minutes have passed)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> datetime:
        self.offset += timedelta(seconds=seconds)
        return self.now()


@dataclass
class LiveServer:
    url: str
    clock: FixedClock | SteerableClock
    settings: Settings

    @property
    def amazon(self) -> str:
        return self.url + "/_amazon"

    async def advance(self, seconds: float, *, amazon_too: bool = True) -> None:
        """Move our clock (and the embedded Amazon's) without waiting."""
        self.clock.advance(seconds)
        if amazon_too:
            async with httpx.AsyncClient() as http:
                response = await http.post(
                    self.amazon + "/_emulator/clock", json={"advance_seconds": seconds}
                )
                response.raise_for_status()

    async def add_customer(self, name: str, email: str, postal_code: str | None = None) -> str:
        body: dict[str, Any] = {"name": name, "email": email, "password": "amazon-pass"}
        if postal_code:
            body["postal_code"] = postal_code
        async with httpx.AsyncClient() as http:
            response = await http.post(self.amazon + "/_emulator/customers", json=body)
        assert response.status_code == 201, response.text
        user_id: str = response.json()["user_id"]
        return user_id

    async def approve_at_amazon(self, user_code: str, user_id: str | None) -> None:
        async with httpx.AsyncClient() as http:
            if user_id is None:
                response = await http.post(self.amazon + f"/_emulator/codes/{user_code}/deny")
            else:
                response = await http.post(
                    self.amazon + f"/_emulator/codes/{user_code}/approve",
                    json={"user_id": user_id},
                )
        assert response.status_code == 200, response.text

    async def local_account(self, username: str, email: str, *, verified: bool = True) -> None:
        """A password account; ``verified``: its owner confirmed the address (only a
        confirmed address is an Amazon sign-in's link target)."""
        async with httpx.AsyncClient(base_url=self.url) as http:
            response = await http.post(
                "/api/v1/accounts",
                json={"username": username, "email": email, "name": username, "password": PASSWORD},
            )
        assert response.status_code == 201, response.text
        if verified:
            await self.confirm_address(email)

    async def confirm_address(self, email: str) -> None:
        """The owner opens the last verification mail to ``email`` (read from the server's
        outbox) and confirms, in a browser of its own."""
        database = Database.from_settings(self.settings)
        try:
            mail = await queued_mail(database, email)
        finally:
            await database.dispose()
        async with httpx.AsyncClient(base_url=self.url) as browser:
            await confirm_by_link(browser, mail[-1])


def live_settings(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "public_url": f"http://127.0.0.1:{port}",
        "device_poll_interval_seconds": 5,
    }
    return offline_settings(tmp_path, **{**values, **overrides})


@contextmanager
def live_server(
    tmp_path: Path, *, clock: FixedClock | SteerableClock | None = None, **overrides: Any
) -> Iterator[LiveServer]:
    port = free_port()
    settings = live_settings(tmp_path, port, **overrides)
    clock = clock or FixedClock(START)
    app = create_app(settings, clock=clock)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", clock=clock, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
