"""lwa/calls.py: every request LwaClient makes is logged and counted once per attempt, by
endpoint name and outcome, with its retry count, and never with a token or code."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lwa_accounts import metrics
from lwa_accounts.errors import AmazonUnavailable
from lwa_accounts.lwa.calls import failure_outcome, outcome_of
from lwa_accounts.lwa.client import LwaClient
from tests.lwa.test_client import TOKEN, USER, WEB, FakeTime, make_settings

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> LwaClient:
    fake = FakeTime()
    return LwaClient(
        make_settings(), transport=httpx.MockTransport(handler), sleep=fake.sleep, clock=fake.clock
    )


def count(endpoint: str, outcome: str) -> float:
    return float(metrics.amazon_calls.labels(endpoint, outcome)._value.get())


def retries(endpoint: str) -> float:
    return float(metrics.amazon_retries.labels(endpoint)._value.get())


def calls(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        dict(r.msg)
        for r in caplog.records
        if r.name == "lwa_accounts.amazon" and isinstance(r.msg, dict)
    ]


def info(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/tokeninfo"):
        body = {"aud": WEB, "user_id": USER, "iss": "https://www.amazon.com", "exp": 3000}
        return httpx.Response(200, json=body)
    if request.url.path.endswith("/user/profile"):
        return httpx.Response(200, json={"user_id": USER, "name": "Ada", "email": "a@b.example"})
    raise AssertionError(request.url)


async def test_a_retried_get_counts_each_attempt_and_its_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="lwa_accounts.amazon")
    answers = iter([503, 200])

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tokeninfo") and next(answers) == 503:
            return httpx.Response(503, json={"error": "server_error"})
        return info(request)

    before = (count("tokeninfo", "ok"), count("tokeninfo", "server_error"), retries("tokeninfo"))
    async with client(flaky) as lwa:
        await lwa.verify_and_fetch(TOKEN)
    after = (count("tokeninfo", "ok"), count("tokeninfo", "server_error"), retries("tokeninfo"))
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
    logged = [(c["endpoint"], c["outcome"], c["status"], c["retries"]) for c in calls(caplog)]
    assert ("tokeninfo", "server_error", 503, 0) in logged
    assert ("tokeninfo", "ok", 200, 1) in logged
    assert ("profile", "ok", 200, 0) in logged
    warnings = [r for r in caplog.records if r.name == "lwa_accounts.amazon"]
    assert {r.levelno for r in warnings} == {logging.INFO, logging.WARNING}
    assert TOKEN not in caplog.text
    assert "Atza" not in json.dumps(calls(caplog))


async def test_the_token_endpoint_is_named_by_grant() -> None:
    def token(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "authorization_pending"})

    before = {n: count(n, "refused") for n in ("device_token", "token", "token_refresh")}
    async with client(token) as lwa:
        pending = await lwa.poll_device_token(device_code="d" * 40, user_code="ABCDEF")
        assert pending.error == "authorization_pending"  # type: ignore[union-attr]
        with pytest.raises(Exception):  # noqa: B017, PT011 - which refusal is client.py's business
            await lwa.exchange_code("code-123", redirect_uri="http://x/cb", code_verifier="v" * 43)
        with pytest.raises(Exception):  # noqa: B017, PT011
            await lwa.refresh("Atzr|refresh")
    after = {n: count(n, "refused") for n in before}
    assert {n: after[n] - before[n] for n in before} == {
        "device_token": 1,
        "token": 1,
        "token_refresh": 1,
    }


async def test_unreachable_amazon_is_counted_as_such() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    before = count("codepair", "unreachable")
    async with client(down) as lwa:
        with pytest.raises(AmazonUnavailable):
            await lwa.create_code_pair()
    assert count("codepair", "unreachable") == before + 1


def test_outcomes() -> None:
    assert [outcome_of(s) for s in (200, 302, 400, 401, 429, 500, 503)] == [
        "ok",
        "ok",
        "refused",
        "refused",
        "throttled",
        "server_error",
        "server_error",
    ]
    request = httpx.Request("GET", "http://x")
    assert failure_outcome(httpx.ReadTimeout("slow", request=request)) == "timeout"
    assert failure_outcome(httpx.ConnectError("no", request=request)) == "unreachable"
    assert failure_outcome(ConnectionResetError()) == "unreachable"
    import asyncio

    assert failure_outcome(asyncio.CancelledError()) == "cancelled"
