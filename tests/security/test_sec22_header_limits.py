"""security.md item 22 (issue 9 hole 7): request headers are capped. Too many or too big
headers get 431 problem+json (the app's check, under any ASGI server); a truly huge header
block is cut off by the server while it arrives (uvicorn on h11: 400 and close), quickly,
and the server keeps serving. Browser-sized headers (8 kB of cookies) pass."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lwa_accounts.web.problems import PROBLEM_JSON
from tests.processes import CLI, free_port, running_server
from tests.web.conftest import make_settings, serve_app

MAX_BYTES = 32 * 1024  # the defaults
MAX_COUNT = 100


def _many_headers(count: int) -> list[tuple[str, str]]:
    return [(f"x-h{n}", "v") for n in range(count)]


@pytest.mark.parametrize("path", ["/api/v1/me", "/signin"])
async def test_sec22_too_many_headers_is_a_431(tmp_path: Path, path: str) -> None:
    async with serve_app(make_settings(tmp_path)) as client:
        response = await client.get(path, headers=_many_headers(MAX_COUNT + 1))
    assert response.status_code == 431
    if path.startswith("/api/"):
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["code"] == "request_headers_too_large"
    else:
        assert "Request headers too large" in response.text


async def test_sec22_too_big_headers_are_a_431(tmp_path: Path) -> None:
    async with serve_app(make_settings(tmp_path)) as client:
        response = await client.get("/api/v1/me", headers={"X-Big": "a" * (MAX_BYTES + 1)})
    assert response.status_code == 431
    assert response.json()["code"] == "request_headers_too_large"


async def test_sec22_browser_sized_headers_pass(tmp_path: Path) -> None:
    cookies = "; ".join(f"c{n}={'x' * 100}" for n in range(80))  # ~8.5 kB
    async with serve_app(make_settings(tmp_path)) as client:
        response = await client.get("/signin", headers=[("cookie", cookies), *_many_headers(40)])
    assert response.status_code == 200


async def test_sec22_header_limits_are_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_header_count=20, max_header_bytes=2048)
    async with serve_app(settings) as client:
        assert (await client.get("/health", headers=_many_headers(10))).status_code == 200
        assert (await client.get("/health", headers=_many_headers(25))).status_code == 431
        big = {"x-big": "a" * 3000}
        assert (await client.get("/health", headers=big)).status_code == 431


# ---- over a real server process --------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    if "LWA_ACCOUNTS_DATABASE_URL" in os.environ:  # LWA_TEST_DATABASE=postgres
        env["LWA_ACCOUNTS_DATABASE_URL"] = os.environ["LWA_ACCOUNTS_DATABASE_URL"]
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(tmp_path / "var"),
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
        }
    )
    port = free_port()
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/health",
        log=tmp_path / "serve.log",
    ):
        yield f"http://127.0.0.1:{port}", port


def _raw_request(port: int, head: bytes, *, timeout: float = 20) -> tuple[bytes, float]:
    """Send a request head over a raw socket (httpx would refuse to build some of these);
    the answer's first bytes (b"" when the server just closed) and the seconds it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # The server may stop reading and close mid-send: that is what a cap looks like.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if len(answer) > 4096:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, time.monotonic() - started


def _head(*headers: bytes) -> bytes:
    return b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(headers) + b"\r\n"


@pytest.mark.slow
def test_sec22_a_16_mb_header_is_refused_quickly_by_a_real_server(
    server: tuple[str, int],
) -> None:
    base, port = server
    answer, seconds = _raw_request(port, _head(b"X-Huge: " + b"a" * (16 * 1024 * 1024) + b"\r\n"))
    # Refused (431 from the app, or 400 + close from the server's parser) or cut off.
    assert answer == b"" or answer.split(b" ", 2)[1] in (b"400", b"431"), answer[:200]
    assert seconds < 10
    assert httpx.get(base + "/health", timeout=10).status_code == 200  # still serving


@pytest.mark.slow
def test_sec22_ten_thousand_headers_are_refused_by_a_real_server(
    server: tuple[str, int],
) -> None:
    base, port = server
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(10_000))
    answer, seconds = _raw_request(port, _head(many))
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert answer.split(b" ", 2)[1] in (b"400", b"431")
    assert seconds < 10
    assert httpx.get(base + "/health", timeout=10).status_code == 200


@pytest.mark.slow
def test_sec22_a_real_server_answers_431_problem_json_just_over_the_limit(
    server: tuple[str, int],
) -> None:
    base, _ = server
    response = httpx.get(base + "/api/v1/me", headers={"X-Big": "a" * (MAX_BYTES + 10)})
    assert response.status_code == 431
    assert response.headers["content-type"] == PROBLEM_JSON
    cookies = "; ".join(f"c{n}={'x' * 100}" for n in range(80))
    assert httpx.get(base + "/signin", headers={"cookie": cookies}).status_code == 200
