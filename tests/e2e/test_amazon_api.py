"""Sign in with Amazon through the JSON API, end to end against the emulated Amazon."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from lwa_accounts.flows import amazon
from lwa_accounts.flows.context import ClientInfo, Context
from lwa_accounts.testing.mail import code_in, link_in, queued_mail
from tests.e2e.amazon_harness import (
    ADA,
    CONTROL,
    GRACE,
    PASSWORD,
    amazon_sign_in,
    bearer,
    confirm_email,
    count,
    database_of,
    e2e_settings,
    mint,
    password_token,
    register_password_account,
    running,
    services_of,
)

Client = tuple[FastAPI, httpx.AsyncClient]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Client]:
    async with running(e2e_settings(tmp_path)) as pair:
        yield pair


async def me(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


async def audit_details(app: FastAPI) -> list[tuple[str, str | None]]:
    async with database_of(app).transaction() as stores:
        return [(e.kind, e.detail) for e in await stores.audit.list(limit=500)]


# ---- the three journeys -----------------------------------------------------------------------


async def test_new_user_then_returning_user(service: Client) -> None:
    app, client = service
    first = await amazon_sign_in(client, await mint(client))
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["result"] == "signed_in"
    assert body["created"] is True
    assert body["account"]["amazon_user_id"] == ADA
    assert body["account"]["email"] == "ada@example.com"
    assert (await me(client, body["session"]["token"]))["amazon_user_id"] == ADA

    again = await amazon_sign_in(client, await mint(client))
    assert again.status_code == 201
    assert again.json()["created"] is False
    assert again.json()["account"]["id"] == body["account"]["id"]
    assert again.json()["session"]["token"] != body["session"]["token"]
    assert await count(app, "accounts") == 1


async def test_email_collision_wrong_then_right_password(service: Client) -> None:
    app, client = service
    local = await register_password_account(client)
    await confirm_email(app)  # only a confirmed address is a link target
    outcome = await amazon_sign_in(client, await mint(client))
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["result"] == "link_required"
    flow = outcome.json()["flow"]
    assert flow["email"] == "ada@example.com"
    assert flow["kind"] == "link"
    assert "token" not in outcome.text  # no session for an email match

    poll = await client.post("/api/v1/flows/poll", json={"flow_id": flow["id"]})
    assert poll.status_code == 200
    assert poll.json()["result"] == "pending"

    wrong = await client.post(
        "/api/v1/flows/link", json={"flow_id": flow["id"], "password": "wrong-pw-1"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_credentials"
    assert wrong.json()["attempts_left"] == 2
    right = await client.post(
        "/api/v1/flows/link", json={"flow_id": flow["id"], "password": PASSWORD}
    )
    assert right.status_code == 201, right.text
    assert right.json()["account"]["id"] == local["id"]
    assert right.json()["account"]["amazon_user_id"] == ADA

    returning = await amazon_sign_in(client, await mint(client))
    assert returning.status_code == 201
    assert returning.json()["account"]["id"] == local["id"]
    # Password sign-in reports the link too (one serializer).
    token = await password_token(client)
    assert (await me(client, token))["amazon_user_id"] == ADA
    replay = await client.post(
        "/api/v1/flows/link", json={"flow_id": flow["id"], "password": PASSWORD}
    )
    assert replay.status_code == 410
    assert replay.json()["code"] == "flow_expired"
    kinds = [kind for kind, _ in await audit_details(app)]
    assert "amazon.linked" in kinds


async def test_sec08_link_throttle_over_http(service: Client) -> None:
    app, client = service
    await register_password_account(client)
    await confirm_email(app)  # only a confirmed address is a link target
    flow_id = (await amazon_sign_in(client, await mint(client))).json()["flow"]["id"]
    statuses = []
    for _ in range(4):
        response = await client.post(
            "/api/v1/flows/link", json={"flow_id": flow_id, "password": "nope-nope"}
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 429]
    assert int(response.headers["Retry-After"]) > 0


async def test_registration_with_missing_fields(service: Client) -> None:
    app, client = service
    token = await mint(client, scope="profile:user_id")  # Amazon shares the user id only
    outcome = await amazon_sign_in(client, token)
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["result"] == "registration_required"
    flow = outcome.json()["flow"]
    assert flow["required"] == ["email", "name"]
    assert flow["prefill"] == {"name": None, "email": None, "postal_code": None}
    missing = await client.post(
        "/api/v1/flows/register", json={"flow_id": flow["id"], "name": "Ada"}
    )
    assert missing.status_code == 422
    assert set(missing.json()["errors"]) == {"email"}
    done = await client.post(
        "/api/v1/flows/register",
        json={"flow_id": flow["id"], "name": "Ada Lovelace", "email": "ada@example.org"},
    )
    assert done.status_code == 201, done.text
    assert done.json()["created"] is True
    assert done.json()["account"]["username"] == "ada"  # derived from the email
    assert await count(app, "amazon_identities") == 1


async def test_email_changed_at_amazon(service: Client) -> None:
    _, client = service
    first = (await amazon_sign_in(client, await mint(client))).json()
    changed = await client.patch(f"{CONTROL}/customers/{ADA}", json={"email": "ada@new.example"})
    assert changed.status_code == 200, changed.text
    again = await amazon_sign_in(client, await mint(client))
    assert again.json()["account"]["email"] == "ada@new.example"  # an Amazon-only account
    assert again.json()["account"]["id"] == first["account"]["id"]


async def test_sec14_email_change_is_pending_for_a_password_account(service: Client) -> None:
    app, client = service
    local = await register_password_account(client)
    token = await password_token(client)
    attached = await client.post(
        "/api/v1/me/amazon", json={"access_token": await mint(client)}, headers=bearer(token)
    )
    assert attached.status_code == 200, attached.text
    await client.patch(f"{CONTROL}/customers/{ADA}", json={"email": "ada@new.example"})
    again = await amazon_sign_in(client, await mint(client))
    assert again.json()["account"]["email"] == "ada@example.com"
    async with database_of(app).transaction() as stores:
        link = await stores.identities.get_for_account(local["id"])
    assert link is not None
    assert link.pending_email == "ada@new.example"


async def test_sec02_token_for_another_app(service: Client) -> None:
    app, client = service
    evil = "amzn1.application-oa2-client.someoneelse000000000000000"
    added = await client.post(
        f"{CONTROL}/clients",
        json={
            "client_id": evil,
            "client_secret": "s",
            "redirect_uris": ["https://evil.example/cb"],
        },
    )
    assert added.status_code == 201, added.text
    refused = await amazon_sign_in(client, await mint(client, client_id=evil))
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_for_another_app"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await count(app, "accounts") == 0
    assert await count(app, "pending_flows") == 0
    assert ("amazon.refused", "reason=token_for_another_app") in await audit_details(app)


async def test_sec03_unknown_and_malformed_tokens(service: Client) -> None:
    app, client = service
    for token in ("Atza|" + "x" * 400, "not a token", "Atza|\x00"):
        refused = await amazon_sign_in(client, token)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_token"
    assert await count(app, "accounts") == 0


async def test_sec03_amazon_down_and_back(service: Client) -> None:
    app, client = service
    token = await mint(client)
    fault = await client.post(
        f"{CONTROL}/faults", json={"path": "/auth/o2/tokeninfo", "status": 503}
    )
    assert fault.status_code == 201
    down = await amazon_sign_in(client, token)
    assert down.status_code == 503
    assert down.json()["code"] == "amazon_unavailable"
    assert int(down.headers["Retry-After"]) > 0
    assert await count(app, "accounts") == 0
    assert await count(app, "audit_events") == 0  # nothing written at all
    await client.delete(f"{CONTROL}/faults")
    back = await amazon_sign_in(client, token)
    assert back.status_code == 201


async def test_attach_and_detach(service: Client) -> None:
    _, client = service
    await register_password_account(client, username="grace", email="grace@example.com")
    token = await password_token(client, "grace")
    attached = await client.post(
        "/api/v1/me/amazon", json={"access_token": await mint(client, GRACE)}, headers=bearer(token)
    )
    assert attached.status_code == 200, attached.text
    assert attached.json()["account"]["amazon_user_id"] == GRACE
    signed_in = await amazon_sign_in(client, await mint(client, GRACE))
    assert signed_in.json()["account"]["username"] == "grace"
    detached = await client.delete("/api/v1/me/amazon", headers=bearer(token))
    assert detached.status_code == 204
    assert (await me(client, token))["amazon_user_id"] is None
    gone = await client.delete("/api/v1/me/amazon", headers=bearer(token))
    assert gone.status_code == 404


async def test_sec10_attach_of_an_identity_linked_elsewhere(service: Client) -> None:
    _, client = service
    owner = (await amazon_sign_in(client, await mint(client))).json()["account"]
    await register_password_account(client, username="grace", email="grace@example.com")
    token = await password_token(client, "grace")
    refused = await client.post(
        "/api/v1/me/amazon", json={"access_token": await mint(client)}, headers=bearer(token)
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "amazon_linked_elsewhere"
    assert owner["id"] not in refused.text
    assert owner["username"] not in refused.text


async def test_sec13_attach_needs_recent_sign_in_or_password(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path, recent_auth_seconds=1)) as (_, client):
        await register_password_account(client)
        token = await password_token(client)
        await asyncio.sleep(1.1)
        stale = await client.post(
            "/api/v1/me/amazon", json={"access_token": await mint(client)}, headers=bearer(token)
        )
        assert stale.status_code == 403
        assert stale.json()["code"] == "reauthentication_required"
        ok = await client.post(
            "/api/v1/me/amazon",
            json={"access_token": await mint(client), "password": PASSWORD},
            headers=bearer(token),
        )
        assert ok.status_code == 200, ok.text


async def test_sec12_last_method_guard(service: Client) -> None:
    _, client = service
    token = (await amazon_sign_in(client, await mint(client))).json()["session"]["token"]
    refused = await client.request("DELETE", "/api/v1/me/amazon", headers=bearer(token))
    assert refused.status_code == 409
    assert refused.json()["code"] == "last_sign_in_method"
    assert (await me(client, token))["amazon_user_id"] == ADA


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the default: a SQLite file in DATA_DIR
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def any_db_service(tmp_path: Path, database_url: str | None) -> AsyncIterator[Client]:
    async with running(e2e_settings(tmp_path, database_url=database_url)) as pair:
        yield pair


@pytest.mark.slow
async def test_sec11_twenty_parallel_first_sign_ins(any_db_service: Client) -> None:
    app, client = any_db_service
    tokens = [await mint(client) for _ in range(20)]
    responses = await asyncio.gather(*(amazon_sign_in(client, token) for token in tokens))
    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.json()["account"]["id"] for r in responses}) == 1
    assert sum(r.json()["created"] for r in responses) == 1
    assert await count(app, "accounts") == 1
    assert await count(app, "amazon_identities") == 1


async def test_flow_finished_on_another_device_is_collected_by_polling(service: Client) -> None:
    app, client = service
    await register_password_account(client)
    await confirm_email(app)  # only a confirmed address is a link target
    flow_id = (await amazon_sign_in(client, await mint(client))).json()["flow"]["id"]
    services = services_of(app)
    phone = Context(services.deps, services.database, ClientInfo())
    async with phone.transaction() as tx:
        done = await amazon.confirm_link(tx, flow_id, PASSWORD, amazon.OnAnotherDevice())
    assert isinstance(done, amazon.FlowCompleted)
    collected = await client.post("/api/v1/flows/poll", json={"flow_id": flow_id})
    assert collected.status_code == 201, collected.text
    assert collected.json()["result"] == "signed_in"
    session_token = collected.json()["session"]["token"]
    assert (await me(client, session_token))["amazon_user_id"] == ADA
    again = await client.post("/api/v1/flows/poll", json={"flow_id": flow_id})
    assert again.status_code == 410


# ---- bad input (item 22) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"access_token": 12},
        {"access_token": None},
        {"access_token": ""},
        {"access_token": "x" * 5000},
        {"access_token": "Atza|abc", "device_name": "x" * 500},
        {"access_token": "Atza|abc", "extra": 1},
        ["Atza|abc"],
    ],
)
async def test_sec22_bad_sign_in_bodies_get_4xx_problems(service: Client, body: Any) -> None:
    app, client = service
    response = await client.post("/api/v1/sessions/amazon", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await count(app, "accounts") == 0


async def test_sec22_bad_flow_requests(service: Client) -> None:
    _, client = service
    for flow_id in ("nope", "flw_\x00", "flw_é"):
        response = await client.post("/api/v1/flows/poll", json={"flow_id": flow_id})
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "flow_not_found"
    bad = await client.post("/api/v1/flows/link", json={"flow_id": "nope", "password": ["x"]})
    assert bad.status_code == 422
    unknown = await client.post(
        "/api/v1/flows/link", json={"flow_id": "flw_unknown", "password": "x"}
    )
    assert unknown.status_code == 404
    huge = await client.post(
        "/api/v1/flows/register", content=b'{"name": "' + b"a" * 70_000 + b'"}'
    )
    assert huge.status_code == 413
    text_body = await client.post(
        "/api/v1/flows/register",
        content=b"flow_id=nope&name=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= text_body.status_code < 500


@pytest.mark.parametrize("path", ["poll", "link", "register"])
@pytest.mark.parametrize("flow_id", [None, 12, "", "flw_" + "a" * 300, ["flw_a"], {"a": 1}])
async def test_sec01_bad_flow_ids_get_422_and_nothing_is_looked_up(
    service: Client, path: str, flow_id: object
) -> None:
    app, client = service
    body: dict[str, object] = {"password": "x", "name": "Ada"} if path != "poll" else {}
    if path == "register":
        body.pop("password")
    if flow_id is not None:
        body["flow_id"] = flow_id
    before = await count(app, "audit_events")
    response = await client.post(f"/api/v1/flows/{path}", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_failed"
    assert "flow_id" in response.json()["errors"]
    # A looked-up bad id is audited as a refusal; nothing was looked up here.
    assert await count(app, "audit_events") == before


async def test_sec01_retired_flow_paths_answer_410_moved_without_looking(
    service: Client,
) -> None:
    app, client = service
    await register_password_account(client)
    await confirm_email(app)  # only a confirmed address is a link target
    flow_id = (await amazon_sign_in(client, await mint(client))).json()["flow"]["id"]
    before = await count(app, "audit_events")
    for method, old, new in (
        ("GET", f"/api/v1/flows/{flow_id}", "/api/v1/flows/poll"),
        ("POST", f"/api/v1/flows/{flow_id}/link", "/api/v1/flows/link"),
        ("POST", f"/api/v1/flows/{flow_id}/register", "/api/v1/flows/register"),
        ("POST", "/api/v1/flows/flw_unknown/link", "/api/v1/flows/link"),
    ):
        response = await client.request(method, old, json={"password": PASSWORD, "name": "x"})
        assert response.status_code == 410, (old, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "moved"
        assert response.json()["moved_to"] == new
    # Nothing looked up or acted on: no audit event, the flow still pending and unlinked.
    assert await count(app, "audit_events") == before
    assert await count(app, "amazon_identities") == 0
    still = await client.post("/api/v1/flows/poll", json={"flow_id": flow_id})
    assert still.json()["result"] == "pending"
    # GET on a new endpoint is a wrong method, not a retired flow id.
    wrong_method = await client.get("/api/v1/flows/poll")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


async def test_openapi_documents_the_amazon_api_with_examples(service: Client) -> None:
    _, client = service
    spec = (await client.get("/api/openapi.json")).json()
    post = spec["paths"]["/api/v1/sessions/amazon"]["post"]
    assert {"200", "201", "401", "503"} <= set(post["responses"])
    assert post["responses"]["200"]["content"]["application/json"]["examples"]
    for path in (
        "/api/v1/flows/poll",
        "/api/v1/flows/link",
        "/api/v1/flows/register",
        "/api/v1/flows/handoff",
        "/api/v1/amazon/device-authorizations/poll",
        "/api/v1/me/amazon",
    ):
        assert "flow_id" not in path
        assert path in spec["paths"]
    # The retired paths are documented as deprecated, answering only 410 (and 405).
    for path in (
        "/api/v1/flows/{flow_id}",
        "/api/v1/flows/{flow_id}/link",
        "/api/v1/flows/{flow_id}/register",
        "/api/v1/flows/{flow_id}/handoff",
        "/api/v1/amazon/device-authorizations/{authorization_id}/poll",
    ):
        (operation,) = spec["paths"][path].values()
        assert operation["deprecated"] is True
        assert set(operation["responses"]) <= {"405", "410", "422"}
    me_amazon = spec["paths"]["/api/v1/me/amazon"]
    assert me_amazon["post"]["security"] == me_amazon["delete"]["security"] != []


async def test_sec01_tokens_are_never_stored_or_logged_in_clear(
    service: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app, client = service
    await register_password_account(client, username="grace", email="grace@example.com")
    [mail] = await queued_mail(database_of(app), "grace@example.com")  # issue 13
    email_secrets = [link_in(mail, "?token=").partition("?token=")[2], code_in(mail)]
    await confirm_email(app, "grace@example.com")
    amazon_token = await mint(client)
    signed_in = (await amazon_sign_in(client, amazon_token)).json()
    link_token = await mint(client, GRACE)
    flow_id = (await amazon_sign_in(client, link_token)).json()["flow"]["id"]
    secrets_seen = [
        amazon_token,
        link_token,
        signed_in["session"]["token"],
        flow_id,
        PASSWORD,
        *email_secrets,
    ]
    dump: list[str] = []
    tables = ("accounts", "sessions", "audit_events", "amazon_identities", "pending_flows")
    async with database_of(app).engine.connect() as conn:
        for table in (*tables, "email_codes", "outbox"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
            dump.extend(str(value) for row in rows for value in row)
    stored = "\n".join(dump)
    refused = await amazon_sign_in(client, amazon_token + "x")  # an unknown token
    assert refused.status_code == 401
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        # The test's own browser opening the mailed link (httpx logs its URL); the service
        # never calls /verify-email itself.
        if not (record.name == "httpx" and "/verify-email?token=" in record.getMessage())
    )
    for secret in secrets_seen:
        assert secret not in stored
        assert secret not in logged
        assert secret not in refused.text
    assert "Atza|" not in stored
