"""LwaClient against the emulated Amazon (an independent oracle), injected as the transport.

The settings are the ones a developer would use against a standalone emulator: only the
two URL overrides; the client ids are the emulator's default development clients.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from lwa_accounts.core.device_poll import Done, Fail, StartOver
from lwa_accounts.core.models import OAuthErrorReply
from lwa_accounts.emulator.app import create_app
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.errors import (
    AmazonAuthorizationFailed,
    AmazonProtocolError,
    AmazonSignedOut,
    AmazonUnavailable,
    InsufficientScope,
    InvalidToken,
    TokenForAnotherApp,
)
from lwa_accounts.lwa import protocol
from lwa_accounts.lwa.client import LwaClient
from lwa_accounts.lwa.device import poll_until_done
from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    Settings,
)

BASE = "http://amazon.test"
CALLBACK = "https://app.test/auth/amazon/callback"
ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"


async def no_sleep(_seconds: float) -> None:
    return None


@dataclass
class Emulated:
    app: Starlette
    control: httpx.AsyncClient  # test-control API and "browser"
    client: LwaClient

    async def mint(self, **body: Any) -> str:
        response = await self.control.post("/_emulator/tokens", json={"user_id": ADA, **body})
        assert response.status_code == 201, response.text
        token: str = response.json()["access_token"]
        return token

    async def fault(self, **spec: Any) -> None:
        response = await self.control.post("/_emulator/faults", json=spec)
        assert response.status_code == 201, response.text


def settings_for_emulator(**overrides: Any) -> Settings:
    return Settings(lwa_api_url=BASE, lwa_authorize_url=f"{BASE}/ap/oa", **overrides)


@pytest.fixture
async def emulated() -> AsyncIterator[Emulated]:
    app = create_app(EmulatorConfig(web_redirect_uris=[CALLBACK]))
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE) as control,
        LwaClient(settings_for_emulator(), transport=transport, sleep=no_sleep) as client,
    ):
        yield Emulated(app, control, client)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def _sign_in_at_amazon(browser: httpx.AsyncClient, authorize_url: str) -> dict[str, str]:
    """Drive /ap/oa like a person: sign in as Ada, allow, follow the redirect back."""
    page = await browser.get(authorize_url)
    assert page.status_code == 200, page.text
    req = re.search(r'name="req" value="([^"]+)"', page.text)
    assert req
    signed_in = await browser.post(
        "/ap/signin",
        data={
            "csrf_token": _csrf(page.text),
            "flow": "oa",
            "req": req.group(1),
            "email": "ada@example.com",
            "password": "ada-demo-password",
        },
    )
    assert signed_in.status_code in (302, 303), signed_in.text
    consent = await browser.get(signed_in.headers["location"])
    assert consent.status_code == 200
    allowed = await browser.post(
        "/ap/consent",
        data={"csrf_token": _csrf(consent.text), "req": req.group(1), "decision": "allow"},
    )
    assert allowed.status_code == 302
    location = allowed.headers["location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_web_flow_code_exchange_verify_refresh(emulated: Emulated) -> None:
    verifier = protocol.new_code_verifier()
    url = emulated.client.authorize_url(
        state="state-123",
        code_challenge=protocol.code_challenge_s256(verifier),
        redirect_uri=CALLBACK,
    )
    back = await _sign_in_at_amazon(emulated.control, url)
    assert back["state"] == "state-123"

    tokens = await emulated.client.exchange_code(
        back["code"], redirect_uri=CALLBACK, code_verifier=verifier
    )
    assert tokens.access_token.startswith("Atza|")
    assert tokens.refresh_token is not None
    assert tokens.expires_in == 3600

    profile = await emulated.client.verify_and_fetch(tokens.access_token)
    assert profile.user_id == ADA
    assert profile.client_id == EMULATED_WEB_CLIENT_ID
    assert (profile.name, profile.email, profile.postal_code) == (
        "Ada Lovelace",
        "ada@example.com",
        "98052",
    )

    with pytest.raises(AmazonAuthorizationFailed):  # the code is single-use
        await emulated.client.exchange_code(
            back["code"], redirect_uri=CALLBACK, code_verifier=verifier
        )

    fresh = await emulated.client.refresh(tokens.refresh_token)
    assert (await emulated.client.verify_and_fetch(fresh.access_token)).user_id == ADA


async def test_wrong_pkce_verifier_spends_the_code(emulated: Emulated) -> None:
    verifier = protocol.new_code_verifier()
    url = emulated.client.authorize_url(
        state="s", code_challenge=protocol.code_challenge_s256(verifier), redirect_uri=CALLBACK
    )
    back = await _sign_in_at_amazon(emulated.control, url)
    with pytest.raises(AmazonAuthorizationFailed):
        await emulated.client.exchange_code(
            back["code"], redirect_uri=CALLBACK, code_verifier=protocol.new_code_verifier()
        )
    with pytest.raises(AmazonAuthorizationFailed):
        await emulated.client.exchange_code(
            back["code"], redirect_uri=CALLBACK, code_verifier=verifier
        )


async def test_code_based_linking_end_to_end(emulated: Emulated) -> None:
    pair = await emulated.client.create_code_pair()
    assert re.fullmatch(r"[A-Z0-9]{6}", pair.user_code)
    assert (pair.expires_in, pair.interval) == (600, 30)
    assert pair.verification_uri.endswith("/code")

    pending = await emulated.client.poll_device_token(
        device_code=pair.device_code, user_code=pair.user_code
    )
    assert isinstance(pending, OAuthErrorReply)
    assert (pending.status, pending.error) == (400, "authorization_pending")

    approved = await emulated.control.post(
        f"/_emulator/codes/{pair.user_code}/approve", json={"user_id": ADA}
    )
    assert approved.status_code == 200, approved.text
    result = await poll_until_done(emulated.client, pair, sleep=no_sleep)
    assert isinstance(result, Done)
    assert result.tokens.refresh_token is not None

    profile = await emulated.client.verify_and_fetch(result.tokens.access_token)
    assert (profile.user_id, profile.client_id) == (ADA, EMULATED_DEVICE_CLIENT_ID)

    # The pair is spent, and the device refreshes with its client id and no secret.
    again = await emulated.client.poll_device_token(
        device_code=pair.device_code, user_code=pair.user_code
    )
    assert getattr(again, "error", None) in ("invalid_code_pair", "invalid_grant")
    refreshed = await emulated.client.refresh(result.tokens.refresh_token, device=True)
    assert refreshed.access_token.startswith("Atza|")


async def test_code_pair_expiry_means_start_over(emulated: Emulated) -> None:
    pair = await emulated.client.create_code_pair()
    clock = await emulated.control.post("/_emulator/clock", json={"advance_seconds": 601})
    assert clock.status_code == 200
    result = await poll_until_done(emulated.client, pair, sleep=no_sleep)
    assert result == StartOver("invalid_code_pair")


async def test_denied_code_stops_polling(emulated: Emulated) -> None:
    pair = await emulated.client.create_code_pair()
    denied = await emulated.control.post(f"/_emulator/codes/{pair.user_code}/deny", json={})
    assert denied.status_code == 200, denied.text
    result = await poll_until_done(emulated.client, pair, sleep=no_sleep)
    assert result == Fail("access_denied")


async def test_token_for_another_app_is_refused(emulated: Emulated) -> None:
    other = "amzn1.application-oa2-client.someoneelse"
    created = await emulated.control.post(
        "/_emulator/clients",
        json={"client_id": other, "client_secret": "x", "redirect_uris": ["https://evil.test/cb"]},
    )
    assert created.status_code == 201, created.text
    token = await emulated.mint(client_id=other)
    with pytest.raises(TokenForAnotherApp):
        await emulated.client.verify_and_fetch(token)


async def test_scopes_shape_the_profile(emulated: Emulated) -> None:
    only_id = await emulated.client.verify_and_fetch(await emulated.mint(scope="profile:user_id"))
    assert (only_id.user_id, only_id.name, only_id.email) == (ADA, None, None)


async def test_insufficient_scope(emulated: Emulated) -> None:
    client_id = "amzn1.application-oa2-client.alexa"
    created = await emulated.control.post(
        "/_emulator/clients",
        json={
            "client_id": client_id,
            "client_secret": "x",
            "redirect_uris": ["https://app.test/cb"],
            "allowed_scopes": ["alexa:all"],
        },
    )
    assert created.status_code == 201, created.text
    token = await emulated.mint(client_id=client_id, scope="alexa:all")
    transport = httpx.ASGITransport(app=emulated.app)
    settings = settings_for_emulator(lwa_allowed_client_ids=client_id)
    async with LwaClient(settings, transport=transport) as client:
        with pytest.raises(InsufficientScope):
            await client.verify_and_fetch(token)


async def test_expired_and_revoked_tokens_are_invalid(emulated: Emulated) -> None:
    token = await emulated.mint()
    await emulated.control.post("/_emulator/clock", json={"advance_seconds": 3601})
    with pytest.raises(InvalidToken):
        await emulated.client.verify_and_fetch(token)

    response = await emulated.control.post("/_emulator/tokens", json={"user_id": ADA})
    fresh = response.json()
    revoked = await emulated.control.post(f"/_emulator/customers/{ADA}/revoke", json={})
    assert revoked.status_code == 200
    with pytest.raises(InvalidToken):
        await emulated.client.verify_and_fetch(fresh["access_token"])
    with pytest.raises(InvalidToken):
        await emulated.client.refresh(fresh["refresh_token"])


async def test_transient_faults_are_retried(emulated: Emulated) -> None:
    token = await emulated.mint()
    await emulated.fault(path="/user/profile", status=503, times=2)
    assert (await emulated.client.verify_and_fetch(token)).user_id == ADA


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "/auth/o2/tokeninfo", "status": 503},
        {"path": "/user/profile", "status": 500},
        {"path": "/user/profile", "status": 200, "body": "<html>not json</html>"},
        {"path": "/auth/o2/tokeninfo", "drop": True},
    ],
)
async def test_lasting_faults_fail_closed(emulated: Emulated, spec: dict[str, Any]) -> None:
    token = await emulated.mint()
    await emulated.fault(**spec)
    with pytest.raises(AmazonUnavailable) as caught:
        await emulated.client.verify_and_fetch(token)
    assert caught.value.retry_after is not None


async def test_code_exchange_is_not_retried_on_a_fault(emulated: Emulated) -> None:
    await emulated.fault(path="/auth/o2/token", status=503, times=1)
    # A retry would reach the real endpoint and fail differently (invalid_grant).
    with pytest.raises(AmazonUnavailable):
        await emulated.client.exchange_code(
            "whatever", redirect_uri=CALLBACK, code_verifier="v" * 43
        )


async def test_slow_down_from_the_emulator_is_honoured() -> None:
    app = create_app(EmulatorConfig(enforce_poll_interval=True, min_poll_interval=45))
    state = app.state.emulator
    slept: list[float] = []
    async with LwaClient(settings_for_emulator(), transport=httpx.ASGITransport(app=app)) as client:
        pair = await client.create_code_pair()

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            state.advance_clock(seconds)  # the emulator's clock is the one that judges
            if len(slept) == 3:
                state.decide_code(pair.user_code, ADA)

        result = await poll_until_done(client, pair, sleep=sleep)
    assert isinstance(result, Done)
    # 0: pending; 30: slow_down (45 s enforced) -> interval 60; 90: pending; 150: tokens.
    # Approximately: the waits are differences of monotonic times, so float rounding at
    # the clock's magnitude shows (60.00000000000091 when the machine has been up ~2 h).
    assert slept == pytest.approx([30, 60, 60], abs=1e-6)


# ---- over real HTTP: the emulator served by uvicorn on a loopback port ------------------------


@pytest.fixture
async def served_emulator() -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(), lifespan="off", log_level="critical", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_standalone_emulator_needs_only_the_two_urls(served_emulator: str) -> None:
    settings = Settings(lwa_api_url=served_emulator, lwa_authorize_url=f"{served_emulator}/ap/oa")
    async with (
        httpx.AsyncClient(base_url=served_emulator) as control,
        LwaClient(settings, sleep=no_sleep) as client,
    ):
        minted = await control.post("/_emulator/tokens", json={"user_id": ADA})
        token = minted.json()["access_token"]
        assert (await client.verify_and_fetch(token)).user_id == ADA
        assert client.authorize_url(
            state="s", code_challenge="c" * 43, redirect_uri=CALLBACK
        ).startswith(f"{served_emulator}/ap/oa?")

        # A dropped connection over real TCP is AmazonUnavailable, after retries.
        fault = await control.post(
            "/_emulator/faults", json={"path": "/user/profile", "drop": True}
        )
        assert fault.status_code == 201, fault.text
        with pytest.raises(AmazonUnavailable):
            await client.verify_and_fetch(token)
        await control.delete("/_emulator/faults")
        assert (await client.verify_and_fetch(token)).user_id == ADA


async def test_revoked_device_grant_refreshes_to_signed_out(emulated: Emulated) -> None:
    """A device security profile that has a secret (as with one profile for web and TV):
    CBL tokens refresh without the secret; once the customer removed the app, that refresh
    means "signed out at Amazon", not a misconfigured client."""
    transport = httpx.ASGITransport(app=emulated.app)
    settings = settings_for_emulator(lwa_device_client_id=EMULATED_WEB_CLIENT_ID)
    async with LwaClient(settings, transport=transport, sleep=no_sleep) as device:
        pair = await device.create_code_pair()
        approved = await emulated.control.post(
            f"/_emulator/codes/{pair.user_code}/approve", json={"user_id": ADA}
        )
        assert approved.status_code == 200, approved.text
        result = await poll_until_done(device, pair, sleep=no_sleep)
        assert isinstance(result, Done)
        assert result.tokens.refresh_token is not None
        await device.refresh(result.tokens.refresh_token, device=True)  # works while granted
        revoked = await emulated.control.post(f"/_emulator/customers/{ADA}/revoke", json={})
        assert revoked.status_code == 200
        try:
            await device.refresh(result.tokens.refresh_token, device=True)
        except AmazonSignedOut:
            pass
        except AmazonProtocolError as error:  # what a revoked TV used to see
            pytest.fail(f"a revoked grant read as a configuration error: {error.extra}")
        else:
            pytest.fail("a revoked grant still refreshed")
