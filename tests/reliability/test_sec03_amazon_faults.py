"""security.md items 3 and 23: Amazon failing, over real TCP, at the HTTP edge.

A real `lwa-accounts serve` talks to a standalone emulated Amazon (`lwa-accounts emulator
serve`, another process) through its pooled network transport, so timeouts and dropped
connections behave as they do against amazon.com (the embedded emulator is reached
in-process, where no timeout applies). The emulator's fault control
(`/_emulator/faults`) makes tokeninfo, the profile and the token endpoint slow past the
deadline, answer 500 or 503, drop the connection, or send malformed JSON. Each time the
device sign-in (`POST /api/v1/sessions/amazon`) and the browser callback
(`/auth/amazon/callback`) must answer 503 with Retry-After (problem+json `amazon_unavailable`
or the friendly page) and write nothing: no account, link, session, pending flow or audit
row (the row counts do not move). Without the fault the same request succeeds, so every
case is a real one.
"""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
)
from tests.processes import CLI, free_port, running_server
from tests.reliability.harness import problem_of_503, server_env, serving, tracebacks

pytestmark = pytest.mark.slow

ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"
DEADLINE_SECONDS = 2.0
TOO_SLOW_MS = 3500  # past the deadline of the retried GETs and the token POST's read timeout
TABLES = ("accounts", "amazon_identities", "sessions", "pending_flows", "audit_events")

# Every way Amazon can fail, as emulator fault specs (without the path).
FAILURES: dict[str, dict[str, Any]] = {
    "slow": {"latency_ms": TOO_SLOW_MS},
    "500": {"status": 500},
    "503": {"status": 503},
    "drop": {"drop": True},
    "malformed": {"status": 200, "body": '{"aud": "amzn1.application-oa2-client.'},
}


class Amazon:
    """The standalone emulator's control API."""

    def __init__(self, base: str) -> None:
        self.control = httpx.Client(base_url=base + "/_emulator", timeout=10)

    def mint(self) -> str:
        minted = self.control.post(
            "/tokens", json={"user_id": ADA, "client_id": EMULATED_DEVICE_CLIENT_ID}
        )
        assert minted.status_code == 201, minted.text
        token: str = minted.json()["access_token"]
        return token

    def fault(self, path: str, spec: dict[str, Any]) -> None:
        added = self.control.post("/faults", json={"path": path, **spec})
        assert added.status_code == 201, added.text

    def heal(self) -> None:
        assert self.control.delete("/faults").status_code in (200, 204)


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, Amazon, Path, Path]]:
    """(client of our server, Amazon's control, the SQLite file, our server's log), shared
    by the tests of this module: two processes start once."""
    tmp_path = tmp_path_factory.mktemp("amazon-faults")
    amazon_port, port = free_port(), free_port()
    amazon_base = f"http://127.0.0.1:{amazon_port}"
    base = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "var"
    amazon_env = server_env(tmp_path / "amazon")
    callback = f"{base}/auth/amazon/callback"
    with running_server(
        [*CLI, "emulator", "serve", "--port", str(amazon_port), "--redirect-uri", callback],
        env=amazon_env,
        ready_url=amazon_base + "/_emulator/customers",
        log=tmp_path / "amazon.log",
    ):
        env = server_env(
            data_dir,
            public_url=base,
            lwa_client_id=EMULATED_WEB_CLIENT_ID,
            lwa_client_secret=EMULATED_WEB_CLIENT_SECRET,
            lwa_device_client_id=EMULATED_DEVICE_CLIENT_ID,
            lwa_api_url=amazon_base,
            lwa_authorize_url=amazon_base + "/ap/oa",
            lwa_deadline_seconds=str(DEADLINE_SECONDS),
            lwa_connect_timeout="1",
            lwa_read_timeout="1",
        )
        with (
            serving(tmp_path, env, port=port) as (_, log),
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            amazon = Amazon(amazon_base)
            try:
                yield client, amazon, data_dir / "lwa-accounts.db", log
            finally:
                amazon.control.close()


def rows(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608


# ---- the browser: our pages and Amazon's -----------------------------------------------


def form_fields(page: str, action_path: str) -> dict[str, str]:
    for match in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page, re.S):
        action = html.unescape(re.search(r'action="([^"]*)"', match.group(1)).group(1))  # type: ignore[union-attr]
        if urlsplit(action).path != action_path:
            continue
        fields: dict[str, str] = {}
        for tag in re.findall(r"<input\b[^>]*>", match.group(2)):
            attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag))
            if "name" in attrs:
                fields[attrs["name"]] = html.unescape(attrs.get("value", ""))
        return fields
    raise AssertionError(f"no form posting to {action_path}: {page[:500]}")


def browser_sign_in(client: httpx.Client) -> httpx.Response:
    """/auth/amazon/start, Amazon's sign-in and consent pages, then our callback's answer."""
    response = client.get("/auth/amazon/start")
    assert response.status_code == 303, response.text
    amazon = httpx.Client(timeout=30, cookies=client.cookies)  # the same browser's cookies
    try:
        url = response.headers["location"]
        response = amazon.get(url)
        for _ in range(8):
            if response.status_code in (302, 303):
                url = str(response.next_request.url) if response.next_request else ""
                if "/auth/amazon/callback" in url:
                    break
                response = amazon.get(url)
            elif "/ap/signin" in response.text and 'name="password"' in response.text:
                fields = form_fields(response.text, "/ap/signin")
                fields |= {"email": "ada@example.com", "password": "ada-demo-password"}
                response = amazon.post(str(response.url.join("/ap/signin")), data=fields)
            elif "/ap/consent" in response.text:
                fields = form_fields(response.text, "/ap/consent") | {"decision": "allow"}
                response = amazon.post(str(response.url.join("/ap/consent")), data=fields)
            else:
                raise AssertionError(response.text[:1000])
        assert "/auth/amazon/callback?" in url, url
        client.cookies.update(amazon.cookies)
    finally:
        amazon.close()
    return client.get(url)


def assert_outage_logged_once(log: Path) -> None:
    """All failures of this module are one outage: a warning, not a line per request."""
    starts = log.read_text().count("Amazon (Login with Amazon) unavailable")
    assert 1 <= starts <= 2, log.read_text()[-3000:]


# ---- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/o2/tokeninfo", "/user/profile"])
def test_sec03_device_sign_in_when_amazon_fails_is_503_and_writes_nothing(
    setup: tuple[httpx.Client, Amazon, Path, Path], path: str
) -> None:
    client, amazon, database, log = setup
    before = rows(database)
    for name, spec in FAILURES.items():
        amazon.fault(path, spec)
        refused = client.post("/api/v1/sessions/amazon", json={"access_token": amazon.mint()})
        assert problem_of_503(refused, "amazon_unavailable") is None, (name, refused.text)
        amazon.heal()
        assert rows(database) == before, name
    signed_in = client.post("/api/v1/sessions/amazon", json={"access_token": amazon.mint()})
    assert signed_in.status_code == 201, signed_in.text
    assert rows(database)["sessions"] == before["sessions"] + 1
    assert tracebacks(log) == 0, log.read_text()[-3000:]
    assert_outage_logged_once(log)


def test_sec03_browser_callback_when_amazon_fails_is_503_and_writes_nothing(
    setup: tuple[httpx.Client, Amazon, Path, Path],
) -> None:
    client, amazon, database, log = setup
    before = rows(database)
    cases = [("/auth/o2/token", name, spec) for name, spec in FAILURES.items()]
    cases += [("/auth/o2/tokeninfo", "503", FAILURES["503"])]
    cases += [("/user/profile", "malformed", FAILURES["malformed"])]
    for path, name, spec in cases:
        amazon.fault(path, spec)
        landed = browser_sign_in(client)
        assert problem_of_503(landed) is None, (path, name, landed.status_code, landed.text[:500])
        assert "Amazon is unavailable" in landed.text, (path, name)
        amazon.heal()
        assert rows(database) == before, (path, name)
    landed = browser_sign_in(client)
    assert landed.status_code == 303, landed.text
    assert rows(database)["sessions"] == before["sessions"] + 1
    assert tracebacks(log) == 0, log.read_text()[-3000:]
    assert_outage_logged_once(log)
