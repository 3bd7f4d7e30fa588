"""security.md item 22 (issue 9 hole 7, "Prove it": fuzzing): schemathesis over
``/api/openapi.json`` with every check it has, anonymous and with a bearer token, the
flow endpoints fed with real flow ids: 0 server errors and 0 mismatches between what the
OpenAPI document says and what the API answers (statuses, content types, bodies, headers
such as ``Allow`` on 405).

In-process over ASGI (schemathesis runs the app's lifespan), bounded: a fixed number of
examples per operation and generation mode, no shrinking, no example database.

One setting differs from schemathesis' defaults: ``positive_data_acceptance`` also accepts
422 ``validation_failed``, because the flows apply rules a JSON Schema cannot state (a
common password, a username's characters after case folding, printable names), and on the
RFC 8628 token endpoint 400 (``authorization_pending``, ``invalid_grant``), which is that
protocol's answer to a well-formed poll. Every conformance check stays strict.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID
from lwa_accounts.web.app import create_app
from tests.web.conftest import PASSWORD, make_settings

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LWA_TEST_FUZZ_EXAMPLES", "12"))  # per operation and mode

CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[[operations]]
include-path = "/api/v1/device/token"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "429", "5xx"]
"""


def all_checks() -> list[Any]:
    """``--checks all``: every check schemathesis registers."""
    load_all_checks()
    checks = list(CHECKS.get_all())
    names = {check.__name__ for check in checks}
    assert {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "unsupported_method",
    } <= names
    return checks


class Api:
    def __init__(self, schema: Any, client: asgi.ASGIClient, ids: dict[str, str]) -> None:
        self.schema = schema
        self.client = client
        self.ids = ids  # real flow and authorization ids, for the path parameters

    def bearer(self) -> dict[str, str]:
        username = f"fuzz{len(self.ids)}"
        self.ids[username] = username
        created = self.client.post(
            "/api/v1/accounts",
            json={"username": username, "name": "Fuzz", "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        signed_in = self.client.post(
            "/api/v1/sessions", json={"username": username, "password": PASSWORD}
        )
        assert signed_in.status_code == 201, signed_in.text
        return {"Authorization": "Bearer " + signed_in.json()["session"]["token"]}


def _real_ids(client: asgi.ASGIClient) -> dict[str, str]:
    """A ``link_required`` flow (an Amazon customer whose email a local account holds,
    through the embedded emulator) and a server-assisted Amazon device authorization."""
    local = client.post(
        "/api/v1/accounts",
        json={"username": "grace", "email": "grace@example.net", "name": "G", "password": PASSWORD},
    )
    assert local.status_code == 201, local.text
    customer = client.post(
        "/_amazon/_emulator/customers",
        json={"name": "Grace H", "email": "grace@example.net", "password": "amazon-pass"},
    )
    assert customer.status_code == 201, customer.text
    minted = client.post(
        "/_amazon/_emulator/tokens",
        json={"user_id": customer.json()["user_id"], "client_id": EMULATED_DEVICE_CLIENT_ID},
    )
    assert minted.status_code in (200, 201), minted.text
    outcome = client.post(
        "/api/v1/sessions/amazon", json={"access_token": minted.json()["access_token"]}
    )
    assert outcome.json().get("result") == "link_required", outcome.text
    started = client.post("/api/v1/amazon/device-authorizations")
    assert started.status_code == 201, started.text
    return {"flow_id": outcome.json()["flow"]["id"], "authorization_id": started.json()["id"]}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = make_settings(tmp_path, password_limit_per_ip="1000/minute")
    app = create_app(settings)
    config = SchemathesisConfig.from_str(CONFIG)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, config=config)
    try:
        with asgi.get_client(cast(Any, app)) as client:
            yield Api(schema, client, _real_ids(client))
    finally:
        asgi.shutdown_lifespans()  # closes the app's database and clients


def _path_parameters(operation: Any, ids: dict[str, str]) -> dict[str, str]:
    # Flow endpoints get real ids (positive mode), so they get past "unknown flow".
    return {
        name: ids[name]
        for name in ("flow_id", "authorization_id")
        if f"{{{name}}}" in operation.path
    }


def fuzz(api: Api, headers: dict[str, str] | None) -> list[str]:
    """Every operation, positive and negative; the distinct failures found."""
    checks = all_checks()
    found: dict[str, str] = {}
    for result in api.schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_one(operation, mode, api.ids, headers, checks, found)
            except Unsatisfiable:
                # Nothing to negate (no inputs, or only free-form strings): fine in negative
                # mode; in positive mode it would mean the operation was never exercised.
                assert not mode.is_positive, operation.label
    return [f"{key}:\n{message}" for key, message in sorted(found.items())]


def _fuzz_one(
    operation: Any,
    mode: GenerationMode,
    ids: dict[str, str],
    headers: dict[str, str] | None,
    checks: list[Any],
    found: dict[str, str],
) -> None:
    real = _path_parameters(operation, ids) if mode.is_positive else {}
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=real or None)

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (AssertionError, BaseExceptionGroup) as failure:
            key = f"{operation.label} [{mode.value}] {response.status_code}"
            found.setdefault(key, "\n".join(str(failure).strip().splitlines()[:12]))

    run()


def test_sec22_schemathesis_finds_no_mismatch_anonymously(api: Api) -> None:
    failures = fuzz(api, None)
    assert not failures, "\n\n".join(failures)


def test_sec22_schemathesis_finds_no_mismatch_with_a_bearer_token(api: Api) -> None:
    failures = fuzz(api, api.bearer())
    assert not failures, "\n\n".join(failures)
