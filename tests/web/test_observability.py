"""The request log, /metrics and its guards, over the whole app in-process (ASGI).

Each assertion on a counter compares two scrapes (the metrics are per process, shared by
every app a test process builds), so "+1" means exactly the request in between.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Message, Receive, Scope, Send

from lwa_accounts.web.app import create_app
from lwa_accounts.web.observe import SANE_REQUEST_ID, route_template
from tests.e2e.amazon_harness import (
    CONTROL,
    amazon_sign_in,
    confirm_email,
    e2e_settings,
    mint,
    register_password_account,
    running,
)
from tests.tv.harness import device_env, device_settings
from tests.web.conftest import PASSWORD, api_register, api_sign_in, bearer, make_settings, serve_app
from tests.web.metrics_helpers import delta, scrape

SIGN_INS = "lwa_accounts_sign_ins_total"
HTTP = "lwa_accounts_http_requests_total"
AMAZON = "lwa_accounts_amazon_calls_total"


def request_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        dict(record.msg)
        for record in caplog.records
        if record.name == "lwa_accounts.requests" and isinstance(record.msg, dict)
    ]


async def test_metrics_show_a_password_sign_in_the_moment_it_happens(tmp_path: Path) -> None:
    async with serve_app(make_settings(tmp_path)) as client:
        await api_register(client)
        before = await scrape(client)
        await api_sign_in(client)
        after = await scrape(client)
        assert delta(before, after, SIGN_INS, method="password", outcome="signed_in") == 1
        assert delta(before, after, HTTP, method="POST", route="/api/v1/sessions", status="201")
        wrong = await client.post("/api/v1/sessions", json={"username": "ada", "password": "no"})
        assert wrong.status_code == 401
        refused = await scrape(client)
        assert (
            delta(
                after, refused, SIGN_INS, method="password", outcome="refused:invalid_credentials"
            )
            == 1
        )
        assert delta(after, refused, SIGN_INS, method="password", outcome="signed_in") == 0


async def test_registration_counts_as_created_and_throttling_by_kind(tmp_path: Path) -> None:
    async with serve_app(make_settings(tmp_path)) as client:
        before = await scrape(client)
        await api_register(client)
        page = await client.get("/register")
        assert page.status_code == 200
        for _ in range(3):  # the per-account-and-IP limit is 3 in these settings
            wrong = await client.post(
                "/api/v1/sessions", json={"username": "ada", "password": "wrong-password"}
            )
            assert wrong.status_code == 401
        throttled = await client.post(
            "/api/v1/sessions", json={"username": "ada", "password": PASSWORD}
        )
        assert throttled.status_code == 429
        after = await scrape(client)
    assert delta(before, after, "lwa_accounts_throttle_refusals_total", kind="password") == 1
    assert (
        delta(before, after, SIGN_INS, method="password", outcome="refused:too_many_attempts") == 1
    )


async def test_amazon_sign_ins_by_outcome_and_amazon_calls(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path)) as (_app, client):
        before = await scrape(client)
        created = await amazon_sign_in(client, await mint(client))
        assert created.json()["created"] is True
        returning = await amazon_sign_in(client, await mint(client))
        assert returning.json()["created"] is False
        shy = await amazon_sign_in(
            client,
            await mint(
                client, "amzn1.account.GRACEHOPPER0000000000000DEMO", scope="profile:user_id"
            ),
        )
        assert shy.json()["result"] == "registration_required"
        refused = await amazon_sign_in(client, "Atza|not-a-token-anyone-issued")
        assert refused.status_code == 401
        after = await scrape(client)
    counted = {
        outcome: delta(before, after, SIGN_INS, method="amazon", outcome=outcome)
        for outcome in ("created", "signed_in", "registration_required")
    }
    assert counted == {"created": 1, "signed_in": 1, "registration_required": 1}
    code = refused.json()["code"]
    assert delta(before, after, SIGN_INS, method="amazon", outcome=f"refused:{code}") == 1
    # tokeninfo and profile, concurrently, for each of the four sign-ins.
    assert delta(before, after, AMAZON, endpoint="tokeninfo", outcome="ok") == 3
    assert delta(before, after, AMAZON, endpoint="tokeninfo", outcome="refused") == 1
    assert delta(before, after, AMAZON, endpoint="profile", outcome="ok") == 3
    assert delta(
        before, after, "lwa_accounts_amazon_call_duration_seconds_count", endpoint="profile",
        outcome="ok",
    ) == 3  # fmt: skip


async def test_amazon_link_required(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client):
        await register_password_account(client)  # Ada's Amazon e-mail, taken locally
        await confirm_email(app)  # and confirmed: a link step
        before = await scrape(client)
        outcome = await amazon_sign_in(client, await mint(client))
        assert outcome.json()["result"] == "link_required"
        linked = await client.post(
            "/api/v1/flows/link",
            json={"flow_id": outcome.json()["flow"]["id"], "password": PASSWORD},
        )
        assert linked.status_code == 201, linked.text
        after = await scrape(client)
    assert delta(before, after, SIGN_INS, method="amazon", outcome="link_required") == 1
    assert delta(before, after, SIGN_INS, method="amazon", outcome="signed_in") == 1


async def test_device_sign_in_and_code_pair_calls(tmp_path: Path) -> None:
    async with device_env(device_settings(tmp_path)) as env:
        await env.local_account("ada", "ada@example.org")
        before = await scrape(env.tv)
        started = await env.tv.post("/api/v1/device/authorize", json={"device_name": "TV"})
        data = started.json()
        await env.phone_sign_in("ada")
        await env.phone_form("/activate", {"code": data["user_code"]})
        await env.phone_form("/activate/decide", {"code": data["user_code"], "decision": "approve"})
        await env.advance(5)
        token = await env.tv.post("/api/v1/device/token", json={"device_code": data["device_code"]})
        assert token.status_code == 200, token.text
        wrong = await env.phone_form("/activate", {"code": "BCDF-GHJK"})
        assert wrong.status_code in (200, 400, 404)
        pair = await env.tv.post("/api/v1/amazon/device-authorizations", json={})
        assert pair.status_code == 201, pair.text
        after = await scrape(env.tv)
    assert delta(before, after, SIGN_INS, method="device", outcome="signed_in") == 1
    assert delta(before, after, SIGN_INS, method="password", outcome="signed_in") == 1  # phone
    assert delta(before, after, SIGN_INS, method="device", outcome="refused:invalid_user_code") == 1
    assert delta(before, after, AMAZON, endpoint="codepair", outcome="ok") == 1


async def test_the_request_log_names_the_route_template_never_the_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lwa_accounts.requests")
    handle = "flw_" + "Q" * 40
    async with serve_app(make_settings(tmp_path)) as client:
        await api_register(client)
        token = await api_sign_in(client)
        caplog.clear()
        me = await client.get("/api/v1/me", headers={**bearer(token), "X-Request-ID": "req-42.a_b"})
        retired = await client.get(f"/api/v1/flows/{handle}", headers={"X-Request-ID": "x y"})
        missing = await client.get(f"/nothing/{handle}")
        css = await client.get("/static/app.css")
        health = await client.get("/health")
    assert me.headers["x-request-id"] == "req-42.a_b"
    assert SANE_REQUEST_ID.fullmatch(retired.headers["x-request-id"])  # "x y" replaced
    assert retired.headers["x-request-id"] != "x y"
    events = request_events(caplog)
    assert [(e["method"], e["route"], e["status"]) for e in events] == [
        ("GET", "/api/v1/me", 200),
        ("GET", "/api/v1/flows/{flow_id}", 410),
        ("GET", "unmatched", missing.status_code),
        ("GET", "/static/{path}", css.status_code),
        ("GET", "/health", health.status_code),
    ]
    me_event = events[0]
    assert me_event["request_id"] == "req-42.a_b"
    assert me_event["account_id"] == me.json()["account"]["id"]
    assert isinstance(me_event["duration_ms"], float)
    assert me_event["event"] == "request"
    assert events[1]["account_id"] is None
    assert events[1]["request_id"] == retired.headers["x-request-id"]
    assert not any(handle in str(e) for e in events)
    records = _request_records(caplog)
    levels = {e["route"]: r.levelno for e, r in zip(events, records, strict=True)}
    assert levels["/health"] == logging.DEBUG
    assert levels["/api/v1/me"] == logging.INFO


def _request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "lwa_accounts.requests"]


@pytest.mark.parametrize(
    "value",
    ["", "a" * 65, "-leading-dash", "with space", "semi;colon", "é", "line\nbreak", "a/b"],
)
def test_insane_request_ids_are_not_taken(value: str) -> None:
    assert SANE_REQUEST_ID.fullmatch(value) is None


def test_route_template_of_an_unmatched_scope() -> None:
    assert route_template({"type": "http", "path": "/x"}) == "unmatched"


async def test_metrics_token_is_required_when_configured(tmp_path: Path) -> None:
    secret = "metrics-token-0123456789"
    async with serve_app(make_settings(tmp_path, metrics_token=secret)) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers=bearer(secret + "x"))
        assert wrong.status_code == 401
        assert wrong.headers["content-type"].startswith("application/problem+json")
        assert wrong.headers["www-authenticate"] == "Bearer"
        non_ascii = await client.get(
            "/metrics", headers=[(b"Authorization", "Bearer métrics".encode())]
        )
        assert non_ascii.status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": secret})).status_code == 401
        await scrape(client, headers=bearer(secret))


async def test_metrics_loopback_only_refuses_other_peers(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, metrics_loopback_only=True))
    async with LifespanManager(app) as manager:
        far = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 40000))
        near = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=far, base_url="http://t") as remote:
            refused = await remote.get("/metrics")
            assert refused.status_code == 404
            assert "lwa_accounts" not in refused.text
            assert (await remote.get("/health")).status_code == 200  # only /metrics is guarded
        async with httpx.AsyncClient(transport=near, base_url="http://t") as local:
            await scrape(local)


async def test_active_sessions_gauge_is_cached(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, metrics_sessions_refresh_seconds=3600)
    async with serve_app(settings) as client:
        await api_register(client)
        first = await scrape(client)  # counted now: no session yet
        await api_sign_in(client)
        cached = await scrape(client)  # within the hour: the cached count
    assert first[("lwa_accounts_active_sessions", frozenset())] == 0
    assert cached[("lwa_accounts_active_sessions", frozenset())] == 0
    async with serve_app(make_settings(tmp_path, metrics_sessions_refresh_seconds=1)) as client:
        fresh = await scrape(client)  # a new app counts at once: the session is there
    assert fresh[("lwa_accounts_active_sessions", frozenset())] == 1


async def test_emulator_calls_are_named_by_mount_and_route(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lwa_accounts.requests")
    async with running(e2e_settings(tmp_path)) as (_app, client):
        added = await client.post(f"{CONTROL}/tokens", json={"user_id": "nobody"})
        assert added.status_code >= 400
    routes = {e["route"] for e in request_events(caplog)}
    assert "/_amazon/_emulator/tokens" in routes


async def test_an_app_that_raises_is_counted_and_logged_as_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from lwa_accounts import metrics
    from lwa_accounts.web.observe import ObserveMiddleware

    class Route:
        path = "/boom/{thing}"

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route()
        raise RuntimeError("a bug")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    counter = metrics.http_requests.labels("other", "/boom/{thing}", "500")
    before = counter._value.get()
    scope: Scope = {"type": "http", "method": "BREW", "path": "/boom/x", "headers": []}
    with pytest.raises(RuntimeError):
        await ObserveMiddleware(broken)(scope, receive, send)
    assert counter._value.get() == before + 1
    (event,) = request_events(caplog)
    assert (event["route"], event["status"], event["method"]) == ("/boom/{thing}", 500, "other")
    assert [r.levelno for r in _request_records(caplog)] == [logging.ERROR]
