"""Bad input of any shape gets a 4xx problem (or the form with a message), never a 500,
and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from lwa_accounts.core.models import NewAccount
from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.web.app import create_app
from tests.web.conftest import (
    PASSWORD,
    api_register,
    api_sign_in,
    bearer,
    csrf_from,
    make_settings,
    serve_app,
)
from tests.web.test_api import assert_problem


async def count_accounts(settings: Settings) -> int:
    """Read the app's database directly (a second connection), as an outsider would."""
    database = Database.from_settings(settings)
    try:
        async with database.transaction() as stores:
            return len(await stores.accounts.list(limit=1000))
    finally:
        await database.dispose()


GOOD = {"username": "ada", "email": "ada@example.com", "name": "Ada", "password": PASSWORD}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "ada"},
        {**GOOD, "username": 123},
        {**GOOD, "password": ["x"]},
        {**GOOD, "name": None},
        {**GOOD, "email": {"a": 1}},
        {**GOOD, "is_admin": True},
        {**GOOD, "username": "ada\x00"},
        {**GOOD, "name": "Ada\x00Lovelace"},
        {**GOOD, "email": "ada\x00@example.com"},
        {**GOOD, "username": "аdа"},  # Cyrillic homoglyphs
        {**GOOD, "username": "\u212aelvin"},  # KELVIN SIGN folds to "k"
        {**GOOD, "username": "ａｄａ"},  # fullwidth
        {**GOOD, "username": "x" * 10_000},
        {**GOOD, "password": "p" * 2000},
        {**GOOD, "name": "\u202eevil"},
        [GOOD],
        "ada",
        None,
    ],
)
async def test_register_refuses_and_creates_nothing(
    client: httpx.AsyncClient, settings: Settings, body: Any
) -> None:
    response = await client.post("/api/v1/accounts", json=body)
    assert_problem(response, 422, "validation_failed")
    assert response.json()["errors"]
    assert await count_accounts(settings) == 0


@pytest.mark.parametrize(
    "content",
    [b"{", b'{"username": "ada",}', b"\xff\xfe", b"nul\x00", b'{"username": "\\ud800"}'],
)
async def test_malformed_json_is_400_or_422(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        "/api/v1/sessions", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    body = response.json()
    assert body["code"] in ("bad_request", "validation_failed")


async def test_huge_bodies_are_413(client: httpx.AsyncClient, settings: Settings) -> None:
    big = b'{"username": "' + b"a" * 100_000 + b'"}'
    response = await client.post(
        "/api/v1/accounts", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")

    async def chunks() -> Any:
        for _ in range(100):
            yield b"a" * 1024

    streamed = await client.post(
        "/api/v1/accounts", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(streamed, 413, "payload_too_large")
    page = await client.get("/register")
    form = await client.post(
        "/register",
        data={"csrf_token": csrf_from(page.text), "username": "ada", "name": "x" * 100_000},
    )
    assert form.status_code == 413
    assert "text/html" in form.headers["content-type"]
    assert "too large" in form.text
    assert await count_accounts(settings) == 0


async def test_unknown_routes_and_methods(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nope"), 404, "not_found")
    assert_problem(await client.get("/api/v2/me"), 404, "not_found")
    assert_problem(await client.put("/api/v1/me"), 405, "method_not_allowed")
    assert_problem(await client.get("/api/v1/accounts"), 405, "method_not_allowed")
    page = await client.get("/definitely/not/here")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]


async def test_weird_session_ids_are_404(client: httpx.AsyncClient) -> None:
    await api_register(client)
    token = await api_sign_in(client)
    for session_id in ["%00", "x" * 500, "ses_%E2%80%AE", "..%2F..%2Fetc", "' OR 1=1 --"]:
        response = await client.delete(f"/api/v1/sessions/{session_id}", headers=bearer(token))
        assert response.status_code in (404, 405), (session_id, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200


async def test_sign_in_with_odd_usernames(client: httpx.AsyncClient) -> None:
    await api_register(client)
    for login in ["ada\x00", "аda", "\u212a", "a" * 254, "\ud7ff", "ada\n"]:
        response = await client.post("/api/v1/sessions", json={"username": login, "password": "x"})
        assert response.status_code in (401, 422), (login, response.text)
    long_login = await client.post(
        "/api/v1/sessions", json={"username": "a" * 255, "password": PASSWORD}
    )
    assert_problem(long_login, 422, "validation_failed")


async def test_form_posts_with_files_or_wrong_types(client: httpx.AsyncClient) -> None:
    page = await client.get("/signin")
    token = csrf_from(page.text)
    as_json = await client.post("/signin", json={"csrf_token": token})
    assert as_json.status_code == 400
    with_file = await client.post(
        "/signin",
        data={"csrf_token": token, "username": "ada"},
        files={"password": ("p.txt", b"secret", "text/plain")},
    )
    assert with_file.status_code == 400
    assert "Traceback" not in with_file.text


async def test_register_page_bad_input_is_a_form_with_messages(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    page = await client.get("/register")
    response = await client.post(
        "/register",
        data={
            "csrf_token": csrf_from(page.text),
            "username": "ada\x00",
            "email": "ada@example.com",
            "name": "Ada",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 422
    assert 'id="username-error"' in response.text
    assert await count_accounts(settings) == 0


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.dictionaries(
        st.sampled_from(["username", "email", "name", "password", "device_name", "extra"]),
        st.one_of(
            st.text(max_size=40),
            st.integers(),
            st.none(),
            st.booleans(),
            st.lists(st.text(max_size=3), max_size=2),
        ),
    )
)
async def test_fuzzed_bodies_never_500(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    for path in ("/api/v1/accounts", "/api/v1/sessions"):
        response = await client.post(path, json=body)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_unexpected_errors_are_a_bare_500_problem(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    async def explode() -> None:
        raise RuntimeError("secret internals: /etc/passwd")

    app.add_api_route("/api/v1/explode", explode)
    app.add_api_route("/explode", explode)
    async with LifespanManager(app) as manager:
        # raise_app_exceptions=False: look at what a real client would receive.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            api = await http.get("/api/v1/explode")
            page = await http.get("/explode")
    assert_problem(api, 500, "internal_error")
    assert page.status_code == 500
    assert "text/html" in page.headers["content-type"]
    for response in (api, page):
        assert "secret internals" not in response.text
        assert "RuntimeError" not in response.text
    assert "secret internals" in caplog.text  # logged for the operator


async def test_rate_limit_storage_down_is_a_503_and_no_session(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0")
    async with serve_app(settings) as client:
        await api_register_direct(settings)
        response = await client.post(
            "/api/v1/sessions", json={"username": "ada", "password": PASSWORD}
        )
        assert_problem(response, 503, "service_unavailable")
        assert response.headers["retry-after"] == "5"
    database = Database.from_settings(settings)
    try:
        async with database.transaction() as stores:
            account = await stores.accounts.get_by_username("ada")
            assert account is not None
            assert await stores.sessions.list_for_account(account.id) == []
    finally:
        await database.dispose()


async def api_register_direct(settings: Settings) -> None:
    """Create the account straight in the database (registration is rate limited too)."""
    database = Database.from_settings(settings)
    try:
        await database.upgrade()
        async with database.transaction() as stores:
            await stores.accounts.create(
                NewAccount(
                    username="ada",
                    email=None,
                    name="Ada",
                    password_hash=await Argon2Hasher(settings).hash(PASSWORD),
                )
            )
    finally:
        await database.dispose()
