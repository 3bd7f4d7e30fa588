"""The Python device client's journeys through its library API, against a live server
(uvicorn on a free loopback port, embedded emulated Amazon). Waiting is scripted: the
journey's ``sleep`` moves the server's clock instead of sleeping, and plays the person's
next step (at Amazon's /code control API or on /activate with a phone's cookies)."""

from __future__ import annotations

import io
import re
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lwa_accounts.cli.device_login import device_login
from lwa_accounts.tv.client import (
    AmazonCode,
    CodeExpired,
    DeviceClient,
    HandOff,
    NotSignedIn,
    PhoneCode,
)
from lwa_accounts.tv.journeys import (
    JourneyEvent,
    JourneyFailed,
    sign_in_with_amazon,
    sign_in_with_phone,
)
from lwa_accounts.tv.token_file import load_session
from tests.tv.harness import CSRF_RE, PASSWORD, through_amazon_pages
from tests.tv.live import LiveServer, live_server

pytestmark = pytest.mark.slow

Action = Callable[[], Awaitable[None]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Postal code required: customers without one need the registration form.
    with live_server(
        tmp_path_factory.mktemp("live"), amazon_required_fields=("email", "name", "postal_code")
    ) as running:
        yield running


class Script:
    """Plays the person: reacts to what the device shows, during the device's next wait."""

    def __init__(self, server: LiveServer, react: Callable[[JourneyEvent], Action | None]) -> None:
        self.server = server
        self.react = react
        self.events: list[JourneyEvent] = []
        self._todo: list[Action] = []

    def on_event(self, event: JourneyEvent) -> None:
        self.events.append(event)
        action = self.react(event)
        if action is not None:
            self._todo.append(action)

    async def sleep(self, seconds: float) -> None:
        await self.server.advance(seconds)
        while self._todo:
            await self._todo.pop(0)()


class Phone:
    def __init__(self, server: LiveServer) -> None:
        self.http = httpx.AsyncClient(base_url=server.url)

    async def form(self, path: str, data: dict[str, str]) -> httpx.Response:
        page = await self.http.get("/signin")
        match = CSRF_RE.search(page.text)
        assert match
        return await self.http.post(path, data={**data, "csrf_token": match.group(1)})

    async def sign_in(self, username: str) -> None:
        response = await self.form(
            "/signin", {"username": username, "password": PASSWORD, "next": "/account"}
        )
        assert response.status_code == 303, response.text


async def test_amazon_journey_new_user(server: LiveServer) -> None:
    user_id = await server.add_customer("Nia New", "nia@example.net", "98052")

    def react(event: JourneyEvent) -> Action | None:
        if isinstance(event, AmazonCode):
            return lambda: server.approve_at_amazon(event.user_code, user_id)
        return None

    script = Script(server, react)
    async with DeviceClient(server.url, device_name="Den TV") as client:
        signed_in = await sign_in_with_amazon(client, on_event=script.on_event, sleep=script.sleep)
        assert signed_in.created is True
        assert signed_in.account.name == "Nia New"
        assert signed_in.account.amazon_user_id == user_id
        me = await client.me(signed_in.token)
        assert me.id == signed_in.account.id
        await client.sign_out(signed_in.token)
        with pytest.raises(NotSignedIn):
            await client.me(signed_in.token)
    assert [type(e) for e in script.events] == [AmazonCode]


async def test_amazon_journey_returning_user_and_expired_code(server: LiveServer) -> None:
    user_id = await server.add_customer("Rae Return", "rae@example.net", "10001")
    codes: list[str] = []

    def react(event: JourneyEvent) -> Action | None:
        if isinstance(event, AmazonCode):
            codes.append(event.user_code)
            if len(codes) == 1:
                # The person is slow: the first code runs out.
                return lambda: server.advance(event.expires_in + 1)
            return lambda: server.approve_at_amazon(event.user_code, user_id)
        return None

    script = Script(server, react)
    async with DeviceClient(server.url) as client:
        first = await sign_in_with_amazon(client, on_event=script.on_event, sleep=script.sleep)
        assert [type(e) for e in script.events] == [AmazonCode, CodeExpired, AmazonCode]
        assert codes[0] != codes[1]
        assert first.created is True
    # Returning: a second journey signs in to the same account.
    script2 = Script(
        server,
        lambda e: (
            (lambda: server.approve_at_amazon(e.user_code, user_id))
            if isinstance(e, AmazonCode)
            else None
        ),
    )
    async with DeviceClient(server.url) as client:
        second = await sign_in_with_amazon(client, on_event=script2.on_event, sleep=script2.sleep)
    assert second.created is False
    assert second.account.id == first.account.id


async def test_amazon_journey_link_finished_on_the_phone(server: LiveServer) -> None:
    await server.local_account("lin", "lin@example.net")
    user_id = await server.add_customer("Lin Link", "lin@example.net", "98052")
    phone = Phone(server)

    async def finish_on_phone(handoff: HandOff) -> None:
        page = await phone.form("/activate", {"code": handoff.code})
        assert "lin@example.net" in page.text
        # The same Amazon account as the TV, on the phone (security.md item 14b).
        start = await phone.form("/activate/amazon", {"code": handoff.code})
        proven = await through_amazon_pages(start, ours=phone.http, email="lin@example.net")
        assert proven.headers["location"] == "/activate/link", proven.text
        done = await phone.form("/activate/link", {"code": handoff.code, "password": PASSWORD})
        assert done.status_code == 200, done.text

    def react(event: JourneyEvent) -> Action | None:
        if isinstance(event, AmazonCode):
            return lambda: server.approve_at_amazon(event.user_code, user_id)
        if isinstance(event, HandOff):
            assert event.reason == "link_required"
            return lambda: finish_on_phone(event)
        return None

    script = Script(server, react)
    async with DeviceClient(server.url, device_name="Hall TV") as client:
        signed_in = await sign_in_with_amazon(client, on_event=script.on_event, sleep=script.sleep)
    await phone.http.aclose()
    assert [type(e) for e in script.events] == [AmazonCode, HandOff]
    assert signed_in.account.username == "lin"
    assert signed_in.account.amazon_user_id == user_id


async def test_amazon_journey_registration_finished_on_the_phone(server: LiveServer) -> None:
    user_id = await server.add_customer("Reg Phone", "regphone@example.net")  # no postal code
    phone = Phone(server)

    async def register_on_phone(handoff: HandOff) -> None:
        form = await phone.form("/activate", {"code": handoff.code})
        assert "postal_code" in form.text
        done = await phone.form(
            "/activate/register",
            {
                "code": handoff.code,
                "username": "regphone",
                "name": "Reg Phone",
                "email": "regphone@example.net",
                "postal_code": "12345",
            },
        )
        assert done.status_code == 200, done.text

    def react(event: JourneyEvent) -> Action | None:
        if isinstance(event, AmazonCode):
            return lambda: server.approve_at_amazon(event.user_code, user_id)
        if isinstance(event, HandOff):
            assert event.reason == "registration_required"
            return lambda: register_on_phone(event)
        return None

    script = Script(server, react)
    async with DeviceClient(server.url) as client:
        signed_in = await sign_in_with_amazon(client, on_event=script.on_event, sleep=script.sleep)
    await phone.http.aclose()
    assert signed_in.created is True
    assert signed_in.account.username == "regphone"


async def test_amazon_journey_denied_fails(server: LiveServer) -> None:
    def react(event: JourneyEvent) -> Action | None:
        if isinstance(event, AmazonCode):
            return lambda: server.approve_at_amazon(event.user_code, None)
        return None

    script = Script(server, react)
    async with DeviceClient(server.url) as client:
        with pytest.raises(JourneyFailed) as failed:
            await sign_in_with_amazon(client, on_event=script.on_event, sleep=script.sleep)
    assert failed.value.code == "access_denied"


async def test_phone_journey_with_approval_on_activate(server: LiveServer) -> None:
    await server.local_account("pat", "pat@example.net")
    phone = Phone(server)

    async def approve(code: PhoneCode) -> None:
        await phone.sign_in("pat")
        page = await phone.form("/activate", {"code": code.user_code})
        assert "Kitchen TV" in page.text
        done = await phone.form("/activate/decide", {"code": code.user_code, "decision": "approve"})
        assert done.status_code == 200

    def react(event: JourneyEvent) -> Action | None:
        if isinstance(event, PhoneCode):
            assert event.verification_uri_complete.startswith(server.url + "/activate?code=")
            return lambda: approve(event)
        return None

    script = Script(server, react)
    async with DeviceClient(server.url, device_name="Kitchen TV") as client:
        signed_in = await sign_in_with_phone(client, on_event=script.on_event, sleep=script.sleep)
    await phone.http.aclose()
    assert signed_in.account.username == "pat"


async def test_device_login_command_keeps_the_token_in_a_0600_file(
    server: LiveServer, tmp_path: Path
) -> None:
    await server.local_account("cli", "cli@example.net")
    phone = Phone(server)

    async def approve(code: PhoneCode) -> None:
        await phone.sign_in("cli")
        await phone.form("/activate", {"code": code.user_code})
        await phone.form("/activate/decide", {"code": code.user_code, "decision": "approve"})

    def react(event: JourneyEvent) -> Action | None:
        return (lambda: approve(event)) if isinstance(event, PhoneCode) else None

    script = Script(server, react)
    out = io.StringIO()
    token_file = tmp_path / "conf" / "token.json"
    signed_in = await device_login(
        server.url,
        "phone",
        device_name="Terminal",
        token_file=token_file,
        out=out,
        on_event=script.on_event,
        sleep=script.sleep,
    )
    await phone.http.aclose()
    text = out.getvalue()
    shown = next(e for e in script.events if isinstance(e, PhoneCode))
    assert shown.user_code in text
    assert "/activate" in text
    assert re.search("[\u2580\u2584\u2588]", text), "a terminal QR code is printed"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    stored = load_session(token_file)
    assert stored is not None
    assert stored.token == signed_in.token
    assert stored.server == server.url
