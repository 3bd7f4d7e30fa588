"""What the operations tests share: the environment of a real `lwa-accounts serve`, the
standalone emulated Amazon several servers talk to, and the few HTTP steps a person takes."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
    Settings,
)
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import QueuedMail, link_in, queued_mail
from tests.processes import CLI, free_port, running_server
from tests.web.metrics_helpers import Samples, parse

PASSWORD = "tangerine-elephant-42"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a server (or CLI) under test: no inherited ``LWA_ACCOUNTS_*``,
    cheap argon2, plus ``settings`` (names without the ``LWA_ACCOUNTS_`` prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_ENV": "test",
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
        }
    )
    env.update({f"LWA_ACCOUNTS_{name.upper()}": value for name, value in settings.items()})
    return env


def amazon_settings(amazon: str) -> dict[str, str]:
    """Settings that point a server at a standalone emulated Amazon with its own client
    ids, as a deployment points at amazon.com: no embedded emulator."""
    return {
        "lwa_client_id": EMULATED_WEB_CLIENT_ID,
        "lwa_client_secret": EMULATED_WEB_CLIENT_SECRET,
        "lwa_device_client_id": EMULATED_DEVICE_CLIENT_ID,
        "lwa_api_url": amazon,
        "lwa_authorize_url": amazon + "/ap/oa",
    }


@contextmanager
def standalone_amazon(tmp_path: Path) -> Iterator[str]:
    """`lwa-accounts emulator serve` on a free port; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_server(
        [*CLI, "emulator", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env(tmp_path / "amazon"),
        ready_url=base + "/_emulator/clock",
        log=tmp_path / "amazon.log",
    ):
        yield base


@contextmanager
def serving(tmp_path: Path, name: str, env: dict[str, str]) -> Iterator[str]:
    """`lwa-accounts serve` on a free port, its log in ``tmp_path/<name>.log``; yields the
    base URL. ``env`` may leave PUBLIC_URL out: it is set to the server's own address."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"LWA_ACCOUNTS_PUBLIC_URL": base, **env}
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        ready_url=base + "/health",
        log=tmp_path / f"{name}.log",
    ):
        yield base


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(base: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = httpx.post(
        base + "/api/v1/accounts",
        json={
            "username": username,
            "email": f"{username}@example.com",
            "name": username.title(),
            "password": password,
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


_HIDDEN_RE = re.compile(r'name="(csrf_token|token)" value="([^"]*)"')


def confirm_email(base: str, env: dict[str, str], address: str) -> None:
    """The owner of ``address`` opens the last verification mail sent to it and presses
    Confirm (issue 13: only a confirmed address is ever an Amazon link step's target).
    The mail is read from the server's own database; ``env`` is the server's."""
    settings = Settings(
        env=env["LWA_ACCOUNTS_ENV"],
        data_dir=Path(env["LWA_ACCOUNTS_DATA_DIR"]),
        database_url=env.get("LWA_ACCOUNTS_DATABASE_URL"),
        secret_key=env.get("LWA_ACCOUNTS_SECRET_KEY"),
    )

    async def read() -> list[QueuedMail]:
        database = Database.from_settings(settings)
        try:
            return await queued_mail(database, address)
        finally:
            await database.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:  # whatever loop this thread runs
        mail = [m for m in pool.submit(asyncio.run, read()).result() if m.kind == "verify_email"]
    assert mail, f"no verification mail to {address}"
    parts = urlsplit(link_in(mail[-1], "/verify-email?token="))
    with httpx.Client(base_url=base, timeout=30) as browser:
        page = browser.get(f"{parts.path}?{parts.query}")
        assert page.status_code == 200, page.text
        fields = {name: html.unescape(value) for name, value in _HIDDEN_RE.findall(page.text)}
        done = browser.post("/verify-email", data=fields)
        assert done.status_code == 303, done.text


def password_sign_in(base: str, username: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        base + "/api/v1/sessions", json={"username": username, "password": password}, timeout=30
    )


def session_token(base: str, username: str, password: str = PASSWORD) -> str:
    response = password_sign_in(base, username, password)
    assert response.status_code == 201, response.text
    token: str = response.json()["session"]["token"]
    return token


def me(base: str, token: str) -> httpx.Response:
    return httpx.get(base + "/api/v1/me", headers=bearer(token), timeout=30)


def csrf_token(browser: httpx.Client, base: str) -> str:
    """The CSRF token ``base`` puts in its forms for this browser (cookies and session)."""
    page = browser.get(base + "/signin")
    assert page.status_code == 200, page.text
    found = CSRF_RE.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def form_post(
    browser: httpx.Client, base: str, path: str, data: dict[str, str], *, token_from: str
) -> httpx.Response:
    """Post a form to ``base`` with a CSRF token the browser got from ``token_from``."""
    return browser.post(base + path, data={**data, "csrf_token": csrf_token(browser, token_from)})


def browser_sign_in(
    browser: httpx.Client, base: str, username: str, *, page_from: str | None = None
) -> httpx.Response:
    """The sign-in form, shown by ``page_from`` (default: ``base``) and posted to ``base``."""
    fields = {"username": username, "password": PASSWORD, "next": "/account"}
    return form_post(browser, base, "/signin", fields, token_from=page_from or base)


def mint(amazon: str, user_id: str) -> str:
    """An access token of the standalone Amazon for ``user_id`` (as a TV's Amazon SDK)."""
    minted = httpx.post(
        amazon + "/_emulator/tokens",
        json={
            "user_id": user_id,
            "client_id": EMULATED_DEVICE_CLIENT_ID,
            "scope": "profile postal_code",
        },
        timeout=30,
    )
    assert minted.status_code == 201, minted.text
    token: str = minted.json()["access_token"]
    return token


def amazon_customer(amazon: str, name: str, email: str) -> str:
    """A new customer at the standalone Amazon; returns the Amazon user id."""
    created = httpx.post(
        amazon + "/_emulator/customers",
        json={"name": name, "email": email, "password": "customer-password"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    user_id: str = created.json()["user_id"]
    return user_id


def log_events(log: Path) -> list[dict[str, Any]]:
    """The JSON lines of a server run with ``LWA_ACCOUNTS_LOG_FORMAT=json``, in order. Every
    line that looks like JSON must parse; the rest (``lwa-accounts serving on ...``, printed
    before logging starts) is skipped."""
    events: list[dict[str, Any]] = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def outage_lines(events: list[dict[str, Any]], logger: str, start: str) -> list[dict[str, Any]]:
    """The lines of ``logger`` whose event begins with ``start`` (an outage log's)."""
    return [e for e in events if e["logger"] == logger and str(e["event"]).startswith(start)]


def scrape(base: str) -> Samples:
    """``/metrics`` of a running server, parsed."""
    response = httpx.get(base + "/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return parse(response.text)
