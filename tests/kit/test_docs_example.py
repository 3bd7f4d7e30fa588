"""The Python snippet in docs/integration-kit.md, run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID
from tests.kit.conftest import BASE_URL, create_legacy_table, fetch, kit_settings, legacy_ddl

DOC = Path(__file__).resolve().parents[2] / "docs" / "integration-kit.md"


def example_source() -> str:
    found = re.search(r"<!-- kit-example -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert found, "the marked example is missing from docs/integration-kit.md"
    return found.group(1)


def test_the_documented_table_is_the_fixture_table() -> None:
    """The SQL in the doc has the columns the snippet maps (the fixture adds extras)."""
    doc = DOC.read_text()
    for column in ("user_pk", "login", "mail", "full_name", "pw", "active"):
        assert re.search(rf"\n    {column}\s", doc), column
        assert column in legacy_ddl("sqlite")


async def test_snippet_builds_a_working_service(tmp_path: Path, database_url: str) -> None:
    await create_legacy_table(database_url)
    namespace: dict[str, Any] = {}
    exec(compile(example_source(), str(DOC), "exec"), namespace)  # noqa: S102 - our own doc
    app = namespace["build_app"](kit_settings(tmp_path, database_url))

    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            signed_in = await client.post(
                "/api/v1/sessions", json={"username": "django", "password": "mystery"}
            )
            assert signed_in.status_code == 201, signed_in.text
            minted = await client.post(
                "/_amazon/_emulator/tokens",
                json={
                    "user_id": "amzn1.account.GRACEHOPPER0000000000000DEMO",
                    "client_id": EMULATED_DEVICE_CLIENT_ID,
                    "scope": "profile",
                },
            )
            token = minted.json()["access_token"]
            amazon = await client.post("/api/v1/sessions/amazon", json={"access_token": token})
            assert amazon.status_code == 201, amazon.text
            assert amazon.json()["created"] is True
    rows = await fetch(database_url, "SELECT pw FROM legacy_users WHERE login = 'django'")
    assert rows[0]["pw"].startswith("$argon2id$")
    grace = await fetch(
        database_url, "SELECT pw FROM legacy_users WHERE mail = 'grace@example.com'"
    )
    assert grace == [{"pw": "!"}]
