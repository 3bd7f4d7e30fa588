"""The JSON API, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import (
    PASSWORD,
    api_register,
    api_sign_in,
    bearer,
    make_settings,
    serve_app,
)

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert "Traceback" not in response.text
    return body


async def test_register_sign_in_me_sign_out(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    account = await api_register(client, username="Ada")
    assert account["username"] == "ada"
    assert account["email"] == "ada@example.com"
    assert account["name"] == "Ada Lovelace"
    assert account["amazon_user_id"] is None
    assert (account["email_verified"], account["postal_code"]) == (False, None)
    assert str(account["id"]).startswith("acc_")

    response = await client.post(
        "/api/v1/sessions", json={"username": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"session", "account", "device_token"}
    assert set(body["account"]) == {
        "id",
        "username",
        "email",
        "email_verified",
        "name",
        "postal_code",
        "amazon_user_id",
    }
    assert body["account"]["id"] == account["id"]
    token = body["session"]["token"]
    assert len(token) >= 43
    assert datetime.fromisoformat(body["session"]["expires_at"]).tzinfo is not None

    me = await client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json() == {"account": account}

    gone = await client.delete("/api/v1/sessions/current", headers=bearer(token))
    assert gone.status_code == 204
    assert_problem(await client.get("/api/v1/me", headers=bearer(token)), 401, "not_authenticated")


async def test_sessions_list_and_revoke(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    await api_register(client)
    tv, phone = await api_sign_in(client), await api_sign_in(client)
    listing = await client.get("/api/v1/sessions", headers=bearer(tv))
    assert listing.status_code == 200
    sessions = listing.json()["sessions"]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    assert {s["kind"] for s in sessions} == {"device"}
    assert {s["device_name"] for s in sessions} == {"Test TV"}
    other = next(s for s in sessions if not s["current"])

    assert (
        await client.delete(f"/api/v1/sessions/{other['id']}", headers=bearer(tv))
    ).status_code == 204
    assert_problem(await client.get("/api/v1/me", headers=bearer(phone)), 401, "not_authenticated")
    assert_problem(
        await client.delete(f"/api/v1/sessions/{other['id']}", headers=bearer(tv)), 404, "not_found"
    )
    assert (await client.get("/api/v1/me", headers=bearer(tv))).status_code == 200


async def test_cannot_revoke_another_accounts_session(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    await api_register(client)
    await api_register(client, username="grace", email="grace@example.com")
    ada, grace = await api_sign_in(client), await api_sign_in(client, username="grace")
    ada_session = (await client.get("/api/v1/sessions", headers=bearer(ada))).json()["sessions"][0]
    assert_problem(
        await client.delete(f"/api/v1/sessions/{ada_session['id']}", headers=bearer(grace)),
        404,
        "not_found",
    )
    assert (await client.get("/api/v1/me", headers=bearer(ada))).status_code == 200


async def test_conflicts_and_validation(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    await api_register(client)
    taken = await client.post(
        "/api/v1/accounts",
        json={"username": "ADA", "email": "x@example.com", "name": "X", "password": PASSWORD},
    )
    assert_problem(taken, 409, "username_taken")
    email = await client.post(
        "/api/v1/accounts",
        json={"username": "x", "email": "Ada@Example.com", "name": "X", "password": PASSWORD},
    )
    # "x" is too short: validation comes before uniqueness.
    assert_problem(email, 422, "validation_failed")
    email = await client.post(
        "/api/v1/accounts",
        json={"username": "xavier", "email": "Ada@Example.com", "name": "X", "password": PASSWORD},
    )
    assert_problem(email, 409, "email_taken")
    weak = await client.post(
        "/api/v1/accounts",
        json={"username": "weak", "email": None, "name": "W", "password": "password1234"},
    )
    body = assert_problem(weak, 422, "validation_failed")
    errors = body["errors"]
    assert isinstance(errors, dict)
    assert set(errors) == {"password"}


async def test_wrong_passwords_401_then_429(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    await api_register(client)
    lefts = []
    for _ in range(3):
        wrong = await client.post(
            "/api/v1/sessions", json={"username": "ada", "password": "not-the-password"}
        )
        body = assert_problem(wrong, 401, "invalid_credentials")
        lefts.append(body["attempts_left"])
    assert lefts == [2, 1, 0]
    blocked = await client.post("/api/v1/sessions", json={"username": "ada", "password": PASSWORD})
    assert_problem(blocked, 429, "too_many_attempts")
    assert 1 <= int(blocked.headers["retry-after"]) <= 15 * 60


async def test_unknown_user_gets_the_same_answer(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    await api_register(client)
    wrong = await client.post("/api/v1/sessions", json={"username": "ada", "password": "nope-nope"})
    unknown = await client.post(
        "/api/v1/sessions", json={"username": "nobody", "password": "nope-nope"}
    )
    a, b = (
        assert_problem(wrong, 401, "invalid_credentials"),
        assert_problem(unknown, 401, "invalid_credentials"),
    )
    assert (a["title"], a["detail"]) == (b["title"], b["detail"])


async def test_me_without_or_with_bad_token(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    anonymous = await client.get("/api/v1/me")
    assert_problem(anonymous, 401, "not_authenticated")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    for header in (
        "Bearer",
        "Bearer nope",
        "Basic YWRhOnB3",
        "Bearer " + "x" * 5000,
        "Bearer a\x01",
    ):
        try:
            response = await client.get("/api/v1/me", headers={"Authorization": header})
        except httpx.LocalProtocolError:
            continue  # httpx itself refuses some header values
        assert_problem(response, 401, "not_authenticated")


async def test_mutations_need_a_bearer_token_not_a_cookie(any_db_client: httpx.AsyncClient) -> None:
    client = any_db_client
    await api_register(client)
    token = await api_sign_in(client)
    client.cookies.set("lwa_session", token)
    # GET /me accepts the cookie (browsers), but a cookie alone cannot delete anything.
    assert (await client.get("/api/v1/me")).status_code == 200
    assert_problem(await client.delete("/api/v1/sessions/current"), 401, "not_authenticated")
    client.cookies.clear()
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200


async def test_openapi_documents_the_contract(any_db_client: httpx.AsyncClient) -> None:
    spec = (await any_db_client.get("/api/openapi.json")).json()
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/accounts", "post"),
        ("/api/v1/sessions", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/sessions", "get"),
        ("/api/v1/sessions/current", "delete"),
        ("/api/v1/sessions/{session_id}", "delete"),
    ]:
        assert method in paths[path], (path, method)
        assert paths[path][method]["summary"]
    assert "429" in paths["/api/v1/sessions"]["post"]["responses"]
    assert spec["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    assert paths["/api/v1/me"]["get"]["security"] == [{"BearerToken": []}]
    assert "security" not in paths["/api/v1/sessions"]["post"]
    schemas = spec["components"]["schemas"]
    assert schemas["SignInRequest"]["examples"]
    assert "/signin" not in paths  # pages stay out of the API document
    docs = await any_db_client.get("/api/docs")
    assert docs.status_code == 200
    # Served from our own /static, so the docs work offline and under a 'self' CSP.
    assert "cdn" not in docs.text.lower()
    assert "script-src" not in docs.headers["content-security-policy"]
    assert "default-src 'self'" in docs.headers["content-security-policy"]
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/init.js"):
        assert (await any_db_client.get(asset)).status_code == 200


async def test_nul_bytes_and_odd_ids_are_4xx_on_every_database(
    any_db_client: httpx.AsyncClient,
) -> None:
    # PostgreSQL refuses NUL in text: such input must be stopped before any query.
    client = any_db_client
    await api_register(client)
    token = await api_sign_in(client)
    signin = await client.post("/api/v1/sessions", json={"username": "ada\x00", "password": "x"})
    assert_problem(signin, 401, "invalid_credentials")
    register = await client.post(
        "/api/v1/accounts",
        json={
            "username": "nul\x00",
            "email": "n\x00@example.com",
            "name": "N\x00",
            "password": PASSWORD,
        },
    )
    assert_problem(register, 422, "validation_failed")
    device = await client.post(
        "/api/v1/sessions",
        json={"username": "ada", "password": PASSWORD, "device_name": "TV\x00"},
    )
    assert_problem(device, 422, "validation_failed")
    for session_id in ("%00", "ses_%00", "x" * 300):
        response = await client.delete(f"/api/v1/sessions/{session_id}", headers=bearer(token))
        assert_problem(response, 404, "not_found")
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200


@pytest.mark.redis
async def test_two_app_instances_share_the_throttle_through_redis(
    tmp_path: Path, redis_url: str
) -> None:
    """Two hosts behind one database and one Redis behave as one."""
    # Keys of this test only: no budget is shared with earlier runs or other tests.
    shared = {"redis_url": redis_url, "redis_key_prefix": f"lwa-test-{uuid.uuid4().hex}"}
    first = make_settings(tmp_path, **shared)
    second = make_settings(tmp_path, **shared)
    async with serve_app(first) as host_a, serve_app(second) as host_b:
        await api_register(host_a)
        for _ in range(3):
            wrong = await host_a.post(
                "/api/v1/sessions", json={"username": "ada", "password": "not-the-password"}
            )
            assert wrong.status_code == 401
        blocked = await host_b.post(
            "/api/v1/sessions", json={"username": "ada", "password": PASSWORD}
        )
        assert_problem(blocked, 429, "too_many_attempts")
