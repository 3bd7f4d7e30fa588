"""security.md item 22: the OpenAPI document says what errors really look like - every
error response of every operation is problem+json with the Problem schema, 405 carries
``Allow``, a non-JSON body is a declared 415 - and the app answers that way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwa_accounts.web.problems import PROBLEM_JSON, describe_problems
from tests.web.conftest import make_settings, serve_app

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(make_settings(tmp_path)) as http:
        yield http


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith("/api/")
        for method, operation in item.items()
        if method in METHODS
    ]


async def test_sec22_every_error_response_is_declared_problem_json(
    client: httpx.AsyncClient,
) -> None:
    document = await _document(client)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    operations = _operations(document)
    assert len(operations) >= 15
    for path, method, operation in operations:
        responses = operation["responses"]
        if not operation.get("deprecated"):  # a retired path lists only its 410 `moved`
            for status in ("400", "405", "413", "431", "503"):
                assert status in responses, (method, path, status)
            assert responses["405"]["headers"]["Allow"]["required"] is True
        for status, response in responses.items():
            if int(status) < 400:
                continue
            content = response["content"]
            assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/ProblemOut"}
            # application/json only where the endpoint really answers it (RFC 8628's 400).
            if "application/json" in content:
                assert (path, status) == ("/api/v1/device/token", "400"), (method, path, status)
        if operation.get("deprecated"):
            continue
        if operation.get("security"):
            assert "401" in responses, (method, path)
        if operation.get("requestBody") or operation.get("parameters"):
            assert {"415", "422"} <= set(responses), (method, path)


async def test_sec22_a_wrong_method_is_405_with_allow_everywhere(
    client: httpx.AsyncClient,
) -> None:
    document = await _document(client)
    for path, item in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        documented = {method.upper() for method in item if method in METHODS}
        wrong = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in documented)
        concrete = path.replace("{flow_id}", "flow_x").replace("{authorization_id}", "ama_x")
        concrete = concrete.replace("{session_id}", "ses_x")
        response = await client.request(wrong, concrete)
        assert response.status_code == 405, (wrong, path, response.status_code)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert set(response.headers["allow"].replace(" ", "").split(",")) >= documented


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_sec22_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(
        "/api/v1/sessions", content=b'{"username": "ada", "password": "x"}', headers=headers
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "unsupported_media_type"


def test_sec22_describe_problems_rewrites_fastapis_error_responses() -> None:
    fastapi_default = {
        "description": "Validation Error",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    }
    document: dict[str, Any] = {
        "paths": {
            "/api/v1/things/{id}": {
                "get": {"parameters": [{"name": "id"}], "responses": {"422": fastapi_default}},
                "post": {"deprecated": True, "responses": {"410": {"description": "Moved"}}},
            },
            "/health": {"get": {"responses": {"200": {"description": "OK"}}}},
        },
        "components": {"schemas": {"HTTPValidationError": {}, "ValidationError": {}}},
    }
    describe_problems(document, {"type": "object"})
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}
    current = document["paths"]["/api/v1/things/{id}"]["get"]["responses"]
    assert current["422"]["content"] == problem
    assert {"400", "405", "413", "415", "422", "431", "503"} <= set(current)
    assert "401" not in current  # no security: no bearer token to refuse
    assert current["405"]["headers"]["Allow"]["required"] is True
    retired = document["paths"]["/api/v1/things/{id}"]["post"]["responses"]
    assert set(retired) == {"410"}
    assert retired["410"]["content"] == problem
    assert document["paths"]["/health"]["get"]["responses"] == {"200": {"description": "OK"}}
    assert set(document["components"]["schemas"]) == {"ProblemOut"}
