"""Fixtures: an emulator app served to httpx through ASGITransport (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from lwa_accounts.emulator.app import create_app
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.emulator.state import EmulatorState
from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
)
from tests.emulator.html_forms import form_with

BASE = "http://amazon.test"
REDIRECT_URI = "https://app.test/auth/amazon/callback"
WEB_ID, WEB_SECRET, DEVICE_ID = (
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
    EMULATED_DEVICE_CLIENT_ID,
)
ADA = ("ada@example.com", "ada-demo-password")


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(web_redirect_uris=[REDIRECT_URI])


@pytest.fixture
def app(config: EmulatorConfig) -> Starlette:
    return create_app(config)


@pytest.fixture
def state(app: Starlette) -> EmulatorState:
    emulator: EmulatorState = app.state.emulator
    return emulator


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


def ada_id(state: EmulatorState) -> str:
    return next(c.user_id for c in state.list_customers() if c.email == ADA[0])


async def browser_authorize(
    client: httpx.AsyncClient, authorize_url: str, *, allow: bool = True, prefix: str = ""
) -> dict[str, list[str]]:
    """Drive /ap/oa like a person: sign in as Ada (demo button), consent, follow the redirect.

    Returns the query of the redirect back to the app.
    """
    page = await client.get(authorize_url)
    if page.status_code == 302:  # signed in and already consented: straight back
        return parse_qs(urlsplit(page.headers["location"]).query)
    if page.status_code == 303:  # signed in: straight to consent
        consent = await client.get(page.headers["location"])
    else:
        assert page.status_code == 200, page.text
        demo = form_with(page.text, "/ap/signin", "Ada Lovelace")
        assert demo.action == prefix + "/ap/signin"
        signed_in = await client.post(demo.action, data=demo.fields)
        assert signed_in.status_code == 303, signed_in.text
        consent = await client.get(signed_in.headers["location"])
    assert consent.status_code == 200, consent.text
    form = form_with(consent.text, "/ap/consent")
    decision = await client.post(
        form.action, data={**form.fields, "decision": "allow" if allow else "deny"}
    )
    assert decision.status_code == 302, decision.text
    location = decision.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return parse_qs(urlsplit(location).query)
