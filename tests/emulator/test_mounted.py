"""The emulator mounted under /_amazon, as the main app embeds it: every URL honours the prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from lwa_accounts.emulator.app import create_app
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.emulator.state import EmulatorState
from tests.emulator.conftest import BASE, REDIRECT_URI, WEB_ID, WEB_SECRET, browser_authorize
from tests.emulator.html_forms import form_with
from tests.emulator.test_authorization_code import authorize_url

PREFIX = "/_amazon"


async def _home(request: object) -> PlainTextResponse:
    return PlainTextResponse("main app")


@pytest.fixture
def emulator() -> Starlette:
    return create_app(EmulatorConfig(web_redirect_uris=[REDIRECT_URI]))


@pytest.fixture
async def site(emulator: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    main = Starlette(routes=[Route("/", _home), Mount(PREFIX, app=emulator)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=main), base_url=BASE) as c:
        yield c


async def test_codepair_points_at_the_prefixed_code_page(site: httpx.AsyncClient) -> None:
    response = await site.post(
        PREFIX + "/auth/O2/create/codepair",
        data={
            "response_type": "device_code",
            "client_id": "amzn1.application-oa2-client.devdeviceclient00000000000000",
            "scope": "profile",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["verification_uri"] == BASE + PREFIX + "/code"
    page = await site.get(response.json()["verification_uri"])
    entry = form_with(page.text, "/code")
    assert entry.action == PREFIX + "/code"
    next_page = await site.post(
        entry.action, data={**entry.fields, "user_code": response.json()["user_code"]}
    )
    signin = form_with(next_page.text, "/ap/signin", "Ada Lovelace")
    assert signin.action == PREFIX + "/ap/signin"
    signed_in = await site.post(signin.action, data=signin.fields)
    assert signed_in.headers["location"] == PREFIX + "/code/confirm"
    assert (await site.get("/")).text == "main app"


async def test_web_flow_under_the_prefix(site: httpx.AsyncClient) -> None:
    query = await browser_authorize(site, PREFIX + authorize_url(), prefix=PREFIX)
    cookie = next(iter(site.cookies.jar))
    assert cookie.path == PREFIX
    tokens = await site.post(
        PREFIX + "/AUTH/o2/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
        },
        auth=(WEB_ID, WEB_SECRET),
    )
    assert tokens.status_code == 200, tokens.text


async def test_control_api_and_faults_are_relative_to_the_prefix(
    site: httpx.AsyncClient, emulator: Starlette
) -> None:
    state: EmulatorState = emulator.state.emulator
    ada = next(c for c in state.list_customers() if c.email == "ada@example.com")
    token = (await site.post(PREFIX + "/_emulator/tokens", json={"user_id": ada.user_id})).json()[
        "access_token"
    ]
    customer = await site.get(PREFIX + "/_Emulator/Customers/" + ada.user_id)
    assert customer.json()["name"] == "Ada Lovelace"
    fault = await site.post(
        PREFIX + "/_emulator/faults", json={"path": "/user/profile", "status": 503, "times": 1}
    )
    assert fault.status_code == 201
    first = await site.get(PREFIX + "/user/profile", params={"access_token": token})
    second = await site.get(PREFIX + "/user/profile", params={"access_token": token})
    assert (first.status_code, second.status_code) == (503, 200)
