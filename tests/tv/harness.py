"""A test harness for the TV flows: the app over ASGI with its own emulated Amazon.

The emulator runs as a separate ASGI app (its own clock, reached at http://amazon.test),
injected as the app's Amazon transport and counted, so tests can prove how often the
server asked Amazon. Our server runs on a FixedClock; ``advance`` moves both clocks.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from lwa_accounts.clock import FixedClock
from lwa_accounts.emulator.app import create_app as create_emulator
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.settings import Settings
from lwa_accounts.testing import offline_settings
from lwa_accounts.web.app import create_app
from tests.e2e.amazon_harness import confirm_email

BASE_URL = "http://testserver"
AMAZON_URL = "http://amazon.test"
PASSWORD = "tangerine-elephant-42"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CSRF_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_.-]+)"')
AMAZON_PASSWORD = "amazon-pass"  # every customer add_customer creates
CALLBACK_PATH = "/auth/amazon/callback"
_FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
_INPUT_RE = re.compile(r"<input\b[^>]*>", re.S)
_ATTR_RE = re.compile(r'(\w[\w-]*)="([^"]*)"')


def device_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "public_url": BASE_URL,
        "lwa_api_url": AMAZON_URL,
        # A phone's "Sign in with Amazon" goes to the same emulated Amazon.
        "lwa_authorize_url": AMAZON_URL + "/ap/oa",
        "device_poll_interval_seconds": 5,
    }
    return offline_settings(tmp_path, **{**values, **overrides})


def form_fields(page: str, action: str) -> dict[str, str]:
    """The named inputs (with their values) of the first form posting to ``action``."""
    for match in _FORM_RE.finditer(page):
        attrs = dict(_ATTR_RE.findall(match.group(1)))
        if html.unescape(attrs.get("action", "")) != action:
            continue
        fields: dict[str, str] = {}
        for tag in _INPUT_RE.findall(match.group(2)):
            named = dict(_ATTR_RE.findall(tag))
            if "name" in named:
                fields[named["name"]] = html.unescape(named.get("value", ""))
        return fields
    raise AssertionError(f"no form posting to {action}")


async def through_amazon_pages(
    start: httpx.Response,
    *,
    ours: httpx.AsyncClient,
    amazon: httpx.AsyncClient | None = None,
    email: str,
    password: str = AMAZON_PASSWORD,
    decision: str = "allow",
) -> httpx.Response:
    """One browser's trip: from our 303 to Amazon, through Amazon's sign-in and consent
    pages (whatever it shows), to our callback's answer. ``amazon`` is the browser's
    cookie jar for a separate Amazon host (None: Amazon is embedded in ``ours``)."""
    assert start.status_code == 303, start.text
    ours_host = urlsplit(str(ours.base_url)).netloc

    def client_for(url: str) -> httpx.AsyncClient:
        host = urlsplit(url).netloc
        return ours if amazon is None or host in ("", ours_host) else amazon

    url = urljoin(str(start.request.url), start.headers["location"])
    response = await client_for(url).get(url)
    for _ in range(8):  # sign-in page, consent page, redirects
        here = str(response.request.url)
        if response.status_code in (302, 303):
            url = urljoin(here, response.headers["location"])
            if urlsplit(url).path == CALLBACK_PATH:
                return await ours.get(url)
            response = await client_for(url).get(url)
            continue
        forms = {
            html.unescape(dict(_ATTR_RE.findall(m.group(1))).get("action", ""))
            for m in _FORM_RE.finditer(response.text)
        }
        signin = next((a for a in forms if a.endswith("/ap/signin")), None)
        consent = next((a for a in forms if a.endswith("/ap/consent")), None)
        if signin is not None and 'name="password"' in response.text and consent is None:
            fields = form_fields(response.text, signin) | {"email": email, "password": password}
            url = urljoin(here, signin)
        elif consent is not None:
            fields = form_fields(response.text, consent) | {"decision": decision}
            url = urljoin(here, consent)
        else:
            raise AssertionError(f"unexpected Amazon page {here}: {response.text[:500]}")
        response = await client_for(url).post(url, data=fields)
    raise AssertionError("Amazon never sent the browser back")


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts requests per path before handing them to the wrapped transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[request.url.path.lower()] += 1
        return await self.inner.handle_async_request(request)


@dataclass
class DeviceEnv:
    app: FastAPI
    tv: httpx.AsyncClient
    phone: httpx.AsyncClient
    amazon: httpx.AsyncClient
    amazon_transport: CountingTransport
    clock: FixedClock
    settings: Settings

    async def advance(self, seconds: float) -> None:
        """Move our clock and the emulated Amazon's together."""
        self.clock.advance(seconds)
        response = await self.amazon.post("/_emulator/clock", json={"advance_seconds": seconds})
        response.raise_for_status()

    @property
    def amazon_token_polls(self) -> int:
        return self.amazon_transport.calls["/auth/o2/token"]

    async def add_customer(
        self, name: str, email: str, *, postal_code: str | None = "98052"
    ) -> str:
        body: dict[str, Any] = {"name": name, "email": email, "password": "amazon-pass"}
        if postal_code:
            body["postal_code"] = postal_code
        response = await self.amazon.post("/_emulator/customers", json=body)
        assert response.status_code == 201, response.text
        user_id: str = response.json()["user_id"]
        return user_id

    async def decide_at_amazon(self, user_code: str, user_id: str | None) -> None:
        if user_id is None:
            response = await self.amazon.post(f"/_emulator/codes/{user_code}/deny")
        else:
            response = await self.amazon.post(
                f"/_emulator/codes/{user_code}/approve", json={"user_id": user_id}
            )
        assert response.status_code == 200, response.text

    async def local_account(
        self, username: str, email: str | None, *, password: str = PASSWORD, verified: bool = True
    ) -> dict[str, Any]:
        """A password account; ``verified``: its owner confirmed the address (only a
        confirmed address is ever an Amazon sign-in's link target)."""
        response = await self.phone.post(
            "/api/v1/accounts",
            json={
                "username": username,
                "email": email,
                "name": username.title(),
                "password": password,
            },
        )
        assert response.status_code == 201, response.text
        account: dict[str, Any] = response.json()["account"]
        if verified and email:
            await confirm_email(self.app, email)
        return account

    async def csrf(self, path: str = "/signin") -> str:
        page = await self.phone.get(path)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    async def phone_form(self, path: str, data: dict[str, str]) -> httpx.Response:
        token = await self.csrf()
        return await self.phone.post(path, data={**data, "csrf_token": token})

    async def phone_proves_amazon(
        self, code: str, email: str, *, password: str = AMAZON_PASSWORD
    ) -> httpx.Response:
        """On the phone's hand-off link page: "Sign in with Amazon" as ``email``; the
        callback's answer (303 to the password step when it was the TV's Amazon user)."""
        start = await self.phone_form("/activate/amazon", {"code": code})
        return await through_amazon_pages(
            start, ours=self.phone, amazon=self.amazon, email=email, password=password
        )

    async def phone_sign_in(self, username: str, password: str = PASSWORD) -> None:
        response = await self.phone_form(
            "/signin", {"username": username, "password": password, "next": "/account"}
        )
        assert response.status_code == 303, response.text


@asynccontextmanager
async def device_env(settings: Settings, **emulator: Any) -> AsyncIterator[DeviceEnv]:
    clock = FixedClock(START)
    emulator.setdefault("web_redirect_uris", [BASE_URL + CALLBACK_PATH])
    amazon_app = create_emulator(EmulatorConfig(**emulator))
    counting = CountingTransport(httpx.ASGITransport(app=amazon_app))
    app = create_app(settings, clock=clock, amazon_transport=counting)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as tv,
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as phone,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=amazon_app), base_url=AMAZON_URL
            ) as amazon,
        ):
            yield DeviceEnv(
                app=app,
                tv=tv,
                phone=phone,
                amazon=amazon,
                amazon_transport=counting,
                clock=clock,
                settings=settings,
            )
