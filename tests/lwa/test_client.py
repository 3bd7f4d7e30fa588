"""LwaClient over httpx.MockTransport scripts: every success and error shape, retries, rules."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs

import httpx
import pytest

from lwa_accounts.core.models import AmazonProfile, CodePair, OAuthErrorReply, TokenSet
from lwa_accounts.errors import (
    AmazonAuthorizationFailed,
    AmazonProtocolError,
    AmazonSignedOut,
    AmazonUnavailable,
    InsufficientScope,
    InvalidToken,
    TokenForAnotherApp,
)
from lwa_accounts.interfaces import AmazonClient, AmazonDeviceClient
from lwa_accounts.lwa.client import LwaClient
from lwa_accounts.settings import Settings

API = "http://amazon.test"
WEB = "amzn1.application-oa2-client.web"
DEVICE = "amzn1.application-oa2-client.device"
OTHER = "amzn1.application-oa2-client.someoneelse"
USER = "amzn1.account.AHQG2JPGF47GOIO4WYGDWAHKTIVA"
TOKEN = "Atza|IwEBIA" + "x" * 340
Handler = Callable[[httpx.Request], httpx.Response]


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "lwa_client_id": WEB,
        "lwa_client_secret": "web-secret",
        "lwa_device_client_id": DEVICE,
        "lwa_api_url": API,
        "lwa_authorize_url": "http://amazon.test/ap/oa",
        "lwa_deadline_seconds": 8.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """Routes by path; records every request."""

    def __init__(self, routes: dict[str, Handler | list[Handler]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes[request.url.path]
        if isinstance(route, list):
            return route.pop(0)(request) if len(route) > 1 else route[0](request)
        return route(request)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def reply(status: int, body: object, headers: dict[str, str] | None = None) -> Handler:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda _request: httpx.Response(status, content=content, headers=headers)


def raises(exc: Exception) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def tokeninfo(aud: str = WEB, user_id: str = USER, exp: int = 3598) -> Handler:
    return reply(
        200,
        {
            "aud": aud,
            "user_id": user_id,
            "iss": "https://www.amazon.com",
            "exp": exp,
            "app_id": "amzn1.application.d65c",
            "iat": 1484875823,
        },
    )


def profile(user_id: str = USER) -> Handler:
    return reply(
        200, {"user_id": user_id, "name": "John Doe", "email": "j@x.com", "postal_code": "98052"}
    )


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_client(fake_time: FakeTime) -> AsyncIterator[Callable[..., LwaClient]]:
    clients: list[LwaClient] = []

    def build(script: Script, **overrides: object) -> LwaClient:
        client = LwaClient(
            make_settings(**overrides),
            transport=httpx.MockTransport(script),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            rng=random.Random(7),
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_lwa_client_satisfies_the_protocols() -> None:
    client = LwaClient(make_settings())
    web: AmazonClient = client
    device: AmazonDeviceClient = client
    assert web is device


# ---- authorize URL -----------------------------------------------------------------------


async def test_authorize_url_uses_web_client_and_default_scope(
    make_client: Callable[..., LwaClient],
) -> None:
    client = make_client(Script({}))
    url = client.authorize_url(state="s1", code_challenge="c" * 43, redirect_uri="https://x/cb")
    query = parse_qs(url.split("?", 1)[1])
    assert url.startswith("http://amazon.test/ap/oa?")
    assert query["client_id"] == [WEB]
    assert query["scope"] == ["profile postal_code"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == ["s1"]


# ---- code exchange -----------------------------------------------------------------------


async def test_exchange_code_success(make_client: Callable[..., LwaClient]) -> None:
    script = Script(
        {
            "/auth/o2/token": reply(
                200,
                {
                    "access_token": "Atza|a",
                    "refresh_token": "Atzr|r",
                    "token_type": "bearer",
                    "expires_in": "3600",
                },
                {"Cache-Control": "no-store"},
            )
        }
    )
    client = make_client(script)
    tokens = await client.exchange_code(
        "ANudVcrBPTyYrgKMHhtu", redirect_uri="https://x/cb", code_verifier="v" * 43
    )
    assert tokens == TokenSet("Atza|a", "bearer", 3600, "Atzr|r")
    [request] = script.requests
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert form(request) == {
        "grant_type": "authorization_code",
        "code": "ANudVcrBPTyYrgKMHhtu",
        "redirect_uri": "https://x/cb",
        "client_id": WEB,
        "client_secret": "web-secret",
        "code_verifier": "v" * 43,
    }


@pytest.mark.parametrize(
    ("status", "body", "expected", "oauth_error"),
    [
        (
            400,
            {"error_description": "…: code", "error": "invalid_grant"},
            AmazonAuthorizationFailed,
            None,
        ),
        (
            401,
            {"error_description": "Client authentication failed", "error": "invalid_client"},
            AmazonProtocolError,
            "invalid_client",
        ),
        (
            400,
            {"error_description": "missing : code", "error": "invalid_request"},
            AmazonProtocolError,
            "invalid_request",
        ),
        (400, {"error": "unauthorized_client"}, AmazonProtocolError, "unauthorized_client"),
        (400, {"error": "unsupported_grant_type"}, AmazonProtocolError, "unsupported_grant_type"),
        (400, {"error": "invalid_scope"}, AmazonProtocolError, "invalid_scope"),
        (400, {"error": "InvalidValue"}, AmazonProtocolError, "InvalidValue"),
        (500, {"error": "server_error"}, AmazonUnavailable, None),
        (400, {"error": "ServerError"}, AmazonUnavailable, None),
        (503, {"error": "temporarily_unavailable"}, AmazonUnavailable, None),
        (502, b"<html>bad gateway</html>", AmazonUnavailable, None),
        (400, b"not json", AmazonUnavailable, None),
        (200, b'{"access_token": 5}', AmazonUnavailable, None),
    ],
)
async def test_exchange_code_errors_are_never_retried(
    make_client: Callable[..., LwaClient],
    status: int,
    body: object,
    expected: type[Exception],
    oauth_error: str | None,
) -> None:
    script = Script({"/auth/o2/token": reply(status, body)})
    client = make_client(script)
    with pytest.raises(expected) as caught:
        await client.exchange_code("code", redirect_uri="https://x/cb", code_verifier="v" * 43)
    assert len(script.requests) == 1  # a spent code is never sent twice
    if oauth_error is not None:
        assert isinstance(caught.value, AmazonProtocolError)
        assert caught.value.oauth_error == oauth_error
        assert caught.value.code == "amazon_protocol_error"


async def test_exchange_code_transport_failure_is_not_retried(
    make_client: Callable[..., LwaClient],
) -> None:
    script = Script({"/auth/o2/token": raises(httpx.ReadTimeout("slow"))})
    client = make_client(script)
    with pytest.raises(AmazonUnavailable) as caught:
        await client.exchange_code("code", redirect_uri="https://x/cb", code_verifier="v" * 43)
    assert len(script.requests) == 1
    assert caught.value.retry_after == 5


async def test_retry_after_header_is_passed_on(make_client: Callable[..., LwaClient]) -> None:
    script = Script(
        {"/auth/o2/token": reply(503, {"error": "temporarily_unavailable"}, {"Retry-After": "17"})}
    )
    client = make_client(script)
    with pytest.raises(AmazonUnavailable) as caught:
        await client.exchange_code("code", redirect_uri="https://x/cb", code_verifier="v" * 43)
    assert caught.value.retry_after == 17


# ---- refresh -----------------------------------------------------------------------------


async def test_refresh_web_sends_secret_device_does_not(
    make_client: Callable[..., LwaClient],
) -> None:
    ok = reply(
        200,
        {
            "access_token": "Atza|n",
            "refresh_token": "Atzr|r2",
            "token_type": "bearer",
            "expires_in": 3600,
        },
    )
    script = Script({"/auth/o2/token": ok})
    client = make_client(script)
    web = await client.refresh("Atzr|r")
    device = await client.refresh("Atzr|d", device=True)
    assert web.refresh_token == "Atzr|r2"
    assert device.access_token == "Atza|n"
    assert form(script.requests[0]) == {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|r",
        "client_id": WEB,
        "client_secret": "web-secret",
    }
    assert form(script.requests[1]) == {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|d",
        "client_id": DEVICE,
    }


async def test_refresh_revoked_grant_is_invalid_token(
    make_client: Callable[..., LwaClient],
) -> None:
    body = {
        "error_description": "The request has an invalid grant parameter : refresh_token. "
        "User may have revoked or didn't grant the permission.",
        "error": "invalid_grant",
    }
    client = make_client(Script({"/auth/o2/token": reply(400, body)}))
    with pytest.raises(InvalidToken):
        await client.refresh("Atzr|r")


async def test_refresh_invalid_grant_means_signed_out_at_amazon(
    make_client: Callable[..., LwaClient],
) -> None:
    """The customer removed the app: a distinct outcome, not a configuration error."""
    body = {
        "error_description": "The request has an invalid grant parameter : refresh_token. "
        "User may have revoked or didn't grant the permission.",
        "error": "invalid_grant",
    }
    client = make_client(Script({"/auth/o2/token": reply(400, body)}))
    with pytest.raises(AmazonSignedOut) as caught:
        await client.refresh("Atzr|d", device=True)
    assert (caught.value.code, caught.value.status) == ("amazon_signed_out", 401)


async def test_refresh_invalid_client_stays_a_configuration_error(
    make_client: Callable[..., LwaClient],
) -> None:
    body = {"error_description": "Client authentication failed", "error": "invalid_client"}
    client = make_client(Script({"/auth/o2/token": reply(401, body)}))
    with pytest.raises(AmazonProtocolError) as caught:
        await client.refresh("Atzr|d", device=True)
    assert not isinstance(caught.value, AmazonSignedOut)
    assert caught.value.extra["oauth_error"] == "invalid_client"


# ---- code-based linking ------------------------------------------------------------------


async def test_create_code_pair(make_client: Callable[..., LwaClient]) -> None:
    body = (
        b'{"user_code":"FUP8UN","device_code":"85581b0f-cf10-459e-b823-477a9220f958",'
        b'"interval":30,"verification_uri":"https://amazon.com/us/code","expires_in":600}'
    )
    script = Script({"/auth/o2/create/codepair": reply(200, body)})
    client = make_client(script)
    pair = await client.create_code_pair(scope="profile")
    assert pair == CodePair(
        "FUP8UN", "85581b0f-cf10-459e-b823-477a9220f958", "https://amazon.com/us/code", 600, 30
    )
    assert form(script.requests[0]) == {
        "response_type": "device_code",
        "client_id": DEVICE,
        "scope": "profile",
    }


async def test_create_code_pair_invalid_value(make_client: Callable[..., LwaClient]) -> None:
    body = {
        "error_description": "The request has an invalid parameter : client_id",
        "error": "InvalidValue",
    }
    client = make_client(Script({"/auth/o2/create/codepair": reply(400, body)}))
    with pytest.raises(AmazonProtocolError) as caught:
        await client.create_code_pair()
    assert caught.value.oauth_error == "InvalidValue"


@pytest.mark.parametrize(
    "error",
    [
        "authorization_pending",
        "slow_down",
        "invalid_code_pair",
        "expired_token",
        "invalid_grant",
        "access_denied",
        "InvalidValue",
        "unsupported_grant_type",
    ],
)
async def test_poll_returns_oauth_errors_as_values(
    make_client: Callable[..., LwaClient], error: str
) -> None:
    script = Script({"/auth/o2/token": reply(400, {"error_description": "x", "error": error})})
    client = make_client(script)
    result = await client.poll_device_token(device_code="dc", user_code="FUP8UN")
    assert result == OAuthErrorReply(400, error, "x")
    assert form(script.requests[0]) == {
        "grant_type": "device_code",
        "device_code": "dc",
        "user_code": "FUP8UN",
    }
    assert len(script.requests) == 1


async def test_poll_invalid_client_401_and_tokens(make_client: Callable[..., LwaClient]) -> None:
    script = Script(
        {
            "/auth/o2/token": [
                reply(
                    401,
                    {
                        "error_description": "Client authentication failed",
                        "error": "invalid_client",
                    },
                ),
                reply(
                    200,
                    {
                        "access_token": "Atza|a",
                        "refresh_token": "Atzr|r",
                        "token_type": "bearer",
                        "expires_in": 3600,
                    },
                ),
            ]
        }
    )
    client = make_client(script)
    assert await client.poll_device_token(device_code="d", user_code="u") == OAuthErrorReply(
        401, "invalid_client", "Client authentication failed"
    )
    tokens = await client.poll_device_token(device_code="d", user_code="u")
    assert isinstance(tokens, TokenSet)
    assert tokens.refresh_token == "Atzr|r"


@pytest.mark.parametrize(
    "handler",
    [
        reply(500, {"error": "servererror"}),
        reply(400, b"garbage"),
        raises(httpx.ConnectError("refused")),
    ],
)
async def test_poll_trouble_raises_unavailable(
    make_client: Callable[..., LwaClient], handler: Handler
) -> None:
    client = make_client(Script({"/auth/o2/token": handler}))
    with pytest.raises(AmazonUnavailable):
        await client.poll_device_token(device_code="d", user_code="u")


# ---- verify_and_fetch --------------------------------------------------------------------


async def test_verify_and_fetch_success(make_client: Callable[..., LwaClient]) -> None:
    script = Script({"/auth/o2/tokeninfo": tokeninfo(), "/user/profile": profile()})
    client = make_client(script)
    result = await client.verify_and_fetch(TOKEN)
    assert result == AmazonProfile(USER, WEB, "John Doe", "j@x.com", "98052")
    info_request = next(r for r in script.requests if r.url.path == "/auth/o2/tokeninfo")
    assert "access_token=Atza%7CIwEBIA" in str(info_request.url)  # URL-encoded in the query
    assert "authorization" not in info_request.headers
    profile_request = next(r for r in script.requests if r.url.path == "/user/profile")
    assert profile_request.headers["authorization"] == f"Bearer {TOKEN}"
    assert profile_request.url.query == b""  # never in the profile URL


async def test_device_client_tokens_are_accepted(make_client: Callable[..., LwaClient]) -> None:
    client = make_client(
        Script({"/auth/o2/tokeninfo": tokeninfo(aud=DEVICE), "/user/profile": profile()})
    )
    assert (await client.verify_and_fetch(TOKEN)).client_id == DEVICE


async def test_legacy_profile_is_accepted(make_client: Callable[..., LwaClient]) -> None:
    legacy = reply(
        200, {"Profile": {"CustomerId": USER, "Name": "Jane", "PrimaryEmail": "jane@x.com"}}
    )
    client = make_client(Script({"/auth/o2/tokeninfo": tokeninfo(), "/user/profile": legacy}))
    result = await client.verify_and_fetch(TOKEN)
    assert (result.name, result.email, result.postal_code) == ("Jane", "jane@x.com", None)


async def test_token_for_another_app_is_refused_and_profile_discarded(
    make_client: Callable[..., LwaClient],
) -> None:
    client = make_client(
        Script({"/auth/o2/tokeninfo": tokeninfo(aud=OTHER), "/user/profile": profile()})
    )
    with pytest.raises(TokenForAnotherApp) as caught:
        await client.verify_and_fetch(TOKEN)
    assert caught.value.code == "token_for_another_app"
    assert "John" not in repr(caught.value.__dict__)


async def test_aud_check_wins_over_a_profile_error(make_client: Callable[..., LwaClient]) -> None:
    client = make_client(
        Script(
            {
                "/auth/o2/tokeninfo": tokeninfo(aud=OTHER),
                "/user/profile": reply(403, {"error": "insufficient_scope"}),
            }
        )
    )
    with pytest.raises(TokenForAnotherApp):
        await client.verify_and_fetch(TOKEN)


async def test_allow_list_setting_is_honoured(make_client: Callable[..., LwaClient]) -> None:
    script = Script({"/auth/o2/tokeninfo": tokeninfo(aud=OTHER), "/user/profile": profile()})
    client = make_client(script, lwa_allowed_client_ids=OTHER)
    assert (await client.verify_and_fetch(TOKEN)).client_id == OTHER
    strict = make_client(
        Script({"/auth/o2/tokeninfo": tokeninfo(aud=WEB), "/user/profile": profile()}),
        lwa_allowed_client_ids=OTHER,
    )
    with pytest.raises(TokenForAnotherApp):
        await strict.verify_and_fetch(TOKEN)


async def test_user_id_mismatch_is_refused(make_client: Callable[..., LwaClient]) -> None:
    other_user = "amzn1.account.ZZZZ2JPGF47GOIO4WYGDWAHKTIVA"
    client = make_client(
        Script({"/auth/o2/tokeninfo": tokeninfo(), "/user/profile": profile(other_user)})
    )
    with pytest.raises(InvalidToken):
        await client.verify_and_fetch(TOKEN)


@pytest.mark.parametrize("exp", [0, -5])
async def test_expired_token_is_refused(make_client: Callable[..., LwaClient], exp: int) -> None:
    client = make_client(
        Script({"/auth/o2/tokeninfo": tokeninfo(exp=exp), "/user/profile": profile()})
    )
    with pytest.raises(InvalidToken):
        await client.verify_and_fetch(TOKEN)


@pytest.mark.parametrize(
    ("info", "prof", "expected"),
    [
        (
            reply(400, {"error_description": "bad", "error": "invalid_token"}),
            profile(),
            InvalidToken,
        ),
        (reply(401, {"error": "invalid_token"}), profile(), InvalidToken),
        (
            tokeninfo(),
            reply(401, {"error": "invalid_token", "error_description": "x", "request_id": "r"}),
            InvalidToken,
        ),
        (
            tokeninfo(),
            reply(403, {"error": "insufficient_scope", "request_id": "r"}),
            InsufficientScope,
        ),
        (tokeninfo(), reply(400, {"error": "invalid_request"}), InvalidToken),
        (tokeninfo(), reply(404, b"nope"), AmazonUnavailable),
        (reply(200, b"<html>"), profile(), AmazonUnavailable),
        (tokeninfo(), reply(200, b'{"user_id": 12}'), AmazonUnavailable),
        (
            reply(200, {"aud": WEB, "user_id": "not-an-amazon-id", "exp": 100}),
            profile(),
            AmazonUnavailable,
        ),
    ],
)
async def test_verify_error_mapping(
    make_client: Callable[..., LwaClient], info: Handler, prof: Handler, expected: type[Exception]
) -> None:
    client = make_client(Script({"/auth/o2/tokeninfo": info, "/user/profile": prof}))
    with pytest.raises(expected):
        await client.verify_and_fetch(TOKEN)


@pytest.mark.parametrize("bad", ["", "Atza| with space", "Atza|\nnewline", "é" * 10, "x" * 5000])
async def test_garbage_tokens_never_reach_amazon(
    make_client: Callable[..., LwaClient], bad: str
) -> None:
    script = Script({"/auth/o2/tokeninfo": tokeninfo(), "/user/profile": profile()})
    client = make_client(script)
    with pytest.raises(InvalidToken):
        await client.verify_and_fetch(bad)
    assert script.requests == []


async def test_tokeninfo_and_profile_run_concurrently() -> None:
    """Each handler waits until both requests are in flight: sequential calls would hang."""
    both_started = asyncio.Event()
    started: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        started.append(request.url.path)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), timeout=2)
        if request.url.path == "/auth/o2/tokeninfo":
            return tokeninfo()(request)
        return profile()(request)

    async with LwaClient(make_settings(), transport=httpx.MockTransport(handler)) as client:
        result = await client.verify_and_fetch(TOKEN)
    assert result.user_id == USER
    assert sorted(started) == ["/auth/o2/tokeninfo", "/user/profile"]


# ---- retries and the deadline ------------------------------------------------------------


async def test_gets_are_retried_with_jittered_backoff(
    make_client: Callable[..., LwaClient], fake_time: FakeTime
) -> None:
    script = Script(
        {
            "/auth/o2/tokeninfo": [
                reply(503, b"busy"),
                raises(httpx.ConnectError("reset")),
                tokeninfo(),
            ],
            "/user/profile": [
                raises(httpx.ReadTimeout("slow")),
                reply(500, {"error": "server_error"}),
                profile(),
            ],
        }
    )
    client = make_client(script)
    assert (await client.verify_and_fetch(TOKEN)).user_id == USER
    assert script.paths().count("/auth/o2/tokeninfo") == 3
    assert script.paths().count("/user/profile") == 3
    assert len(fake_time.sleeps) == 4
    assert all(0 <= s <= 1.0 for s in fake_time.sleeps)
    assert len(set(fake_time.sleeps)) > 1  # jittered, not a fixed delay


async def test_retries_give_up_after_max_attempts(make_client: Callable[..., LwaClient]) -> None:
    script = Script({"/auth/o2/tokeninfo": reply(503, b"busy"), "/user/profile": profile()})
    client = make_client(script)
    with pytest.raises(AmazonUnavailable) as caught:
        await client.verify_and_fetch(TOKEN)
    assert script.paths().count("/auth/o2/tokeninfo") == 4
    assert caught.value.code == "amazon_unavailable"
    assert caught.value.status == 503


async def test_retries_stop_at_the_deadline(fake_time: FakeTime) -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(fake_time.now)
        fake_time.now += 0.3  # each attempt eats 0.3 s of the 0.5 s budget
        return httpx.Response(503)

    async with LwaClient(
        make_settings(lwa_deadline_seconds=0.5),
        transport=httpx.MockTransport(handler),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rng=random.Random(1),
    ) as client:
        with pytest.raises(AmazonUnavailable):
            await client.tokeninfo(TOKEN, deadline=fake_time.now + 0.5)
    assert 1 <= len(calls) <= 2
    assert fake_time.now - 1000.0 < 0.5 + 0.3 + 1e-9


async def test_client_errors_are_not_retried(make_client: Callable[..., LwaClient]) -> None:
    script = Script(
        {"/auth/o2/tokeninfo": reply(400, {"error": "invalid_token"}), "/user/profile": profile()}
    )
    client = make_client(script)
    with pytest.raises(InvalidToken):
        await client.verify_and_fetch(TOKEN)
    assert script.paths().count("/auth/o2/tokeninfo") == 1


async def test_per_request_timeout_is_capped_by_the_deadline(fake_time: FakeTime) -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return tokeninfo()(request)

    async with LwaClient(
        make_settings(lwa_read_timeout=5.0, lwa_connect_timeout=3.0),
        transport=httpx.MockTransport(handler),
        clock=fake_time.clock,
    ) as client:
        await client.tokeninfo(TOKEN, deadline=fake_time.now + 0.25)
    assert seen[0]["read"] == pytest.approx(0.25)
    assert seen[0]["connect"] == pytest.approx(0.25)


async def test_a_transport_that_never_answers_is_cut_at_the_deadline() -> None:
    """httpx times only its network transports; an in-process one (the embedded emulator)
    that hangs must still end in AmazonUnavailable within the deadline, GETs and POSTs."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise AssertionError("not reached")  # pragma: no cover

    settings = make_settings(lwa_deadline_seconds=0.3)
    async with LwaClient(settings, transport=httpx.MockTransport(hang)) as client:
        started = time.monotonic()
        with pytest.raises(AmazonUnavailable):
            await client.verify_and_fetch(TOKEN)
        with pytest.raises(AmazonUnavailable):
            await client.exchange_code(
                "code", redirect_uri="http://service.test/cb", code_verifier="v" * 43
            )
        assert time.monotonic() - started < 5  # two deadlines of 0.3 s, not 2 x 60 s


# ---- tokens never logged -------------------------------------------------------------------


async def test_tokens_are_not_logged(
    make_client: Callable[..., LwaClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(Script({"/auth/o2/tokeninfo": tokeninfo(), "/user/profile": profile()}))
    await client.verify_and_fetch(TOKEN)
    assert "tokeninfo" in caplog.text  # httpx did log the requests...
    assert "IwEBIA" not in caplog.text  # ...but never the token


def test_token_set_repr_hides_tokens() -> None:
    assert "Atza" not in repr(TokenSet("Atza|secret", "bearer", 3600, "Atzr|secret"))


async def test_cancelling_a_verification_cancels_both_requests() -> None:
    in_flight: list[str] = []
    cancelled: list[str] = []
    both = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        in_flight.append(request.url.path)
        if len(in_flight) == 2:
            both.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(request.url.path)
            raise
        raise AssertionError("unreachable")

    async with LwaClient(make_settings(), transport=httpx.MockTransport(handler)) as client:
        task = asyncio.create_task(client.verify_and_fetch(TOKEN))
        await asyncio.wait_for(both.wait(), timeout=2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(cancelled) == ["/auth/o2/tokeninfo", "/user/profile"]
