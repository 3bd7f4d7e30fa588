"""security.md item 20 (and issue 9 hole 6): secrets are compared as bytes, so a CSRF
token or a signed cookie holding anything at all - non-ASCII, NUL, invalid UTF-8, 10 kB -
is refused with a 4xx, never a 500 (``hmac.compare_digest`` raises on non-ASCII ``str``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from lwa_accounts.compare import same_secret
from lwa_accounts.emulator.state import pkce_matches
from lwa_accounts.web import amazon_cookies, csrf
from tests.security.routes import form_paths_of
from tests.web.conftest import csrf_from, make_settings, serve_app

FORM_PATHS = form_paths_of(make_settings(Path("/nonexistent-never-opened")))

# Raw urlencoded bodies: what an attacker can put on the wire, not what a browser would.
BAD_TOKENS: dict[str, bytes] = {
    "non_ascii": b"csrf_token=%C3%A9",
    "non_ascii_raw": "csrf_token=é".encode(),
    "nul": b"csrf_token=%00",
    "invalid_utf8": b"csrf_token=%ED%A0%80%FF%FE",
    "invalid_utf8_raw": b"csrf_token=\xff\xfe\xed\xa0\x80",
    "ten_kb": b"csrf_token=" + "é".encode() * 5000,
    "repeated": "csrf_token=a&csrf_token=é".encode(),
}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(make_settings(tmp_path)) as http:
        await http.get("/signin")  # a real CSRF nonce cookie, so only the token is bad
        yield http


def test_sec20_every_post_form_is_enumerated() -> None:
    # The 13 forms of issue 9; a new one joins automatically, a lost router shows here.
    assert len(FORM_PATHS) >= 13
    assert {"/signin", "/register", "/auth/amazon/link", "/activate"} <= set(FORM_PATHS)


@pytest.mark.parametrize("path", FORM_PATHS)
async def test_sec20_non_ascii_csrf_token_is_a_403_on_every_form(
    client: httpx.AsyncClient, path: str
) -> None:
    for name, body in BAD_TOKENS.items():
        response = await client.post(
            path,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 403, (path, name, response.status_code)
        assert "Traceback" not in response.text


@pytest.mark.parametrize("path", FORM_PATHS)
async def test_sec20_non_ascii_csrf_token_in_multipart_is_a_403(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.post(path, files={"csrf_token": (None, "é\x00".encode())})
    assert response.status_code == 403, (path, response.status_code)


# A cookie header is bytes on the wire; the server decodes it as Latin-1, so UTF-8 'é'
# arrives as two non-ASCII characters.
BAD_COOKIE_VALUES = {
    "non_ascii": "é".encode(),
    "non_ascii_mac": "abc.é".encode(),
    "non_ascii_both": "é.é".encode(),
    "invalid_utf8_mac": b"eyJ4IjoxfQ==.\xff\xfe",
    "long_non_ascii": b"x." + "é".encode() * 1000,
}


@pytest.mark.parametrize("value", BAD_COOKIE_VALUES.values(), ids=BAD_COOKIE_VALUES.keys())
@pytest.mark.parametrize(
    ("method", "path", "cookie"),
    [
        ("GET", "/auth/amazon/link", amazon_cookies.FLOW_COOKIE),
        ("POST", "/auth/amazon/link", amazon_cookies.FLOW_COOKIE),
        ("GET", "/auth/amazon/register", amazon_cookies.FLOW_COOKIE),
        ("POST", "/auth/amazon/register", amazon_cookies.FLOW_COOKIE),
        ("GET", "/auth/amazon/callback?code=abc&state=def", amazon_cookies.OAUTH_COOKIE),
    ],
)
async def test_sec20_non_ascii_flow_cookie_is_a_4xx(
    tmp_path: Path, method: str, path: str, cookie: str, value: bytes
) -> None:
    settings = make_settings(tmp_path)
    async with serve_app(settings) as http:
        token = csrf_from((await http.get("/signin")).text)
        nonce = http.cookies[csrf.cookie_name(settings)]
        http.cookies.clear()  # from here on, the Cookie header below is all it sends

        async def send(flow_cookie: bytes) -> httpx.Response:
            headers = {b"Cookie": f"{csrf.cookie_name(settings)}={nonce}".encode() + flow_cookie}
            if method == "GET":
                return await http.get(path, headers=headers)
            return await http.post(
                path,
                content=f"csrf_token={token}&password=x".encode(),
                headers={**headers, b"Content-Type": b"application/x-www-form-urlencoded"},
            )

        without = await send(b"")
        response = await send(b"; " + cookie.encode() + b"=" + value)
    # A forged cookie is as good as none: the same refusal, never a 500.
    assert without.status_code < 500
    assert response.status_code == without.status_code, (response.status_code, response.text)
    assert "Traceback" not in response.text


@pytest.mark.parametrize("given", ["é", "\x00", "\ud800", "a" * 10_000, ""])
def test_sec20_every_secret_comparison_takes_any_text(given: str) -> None:
    # The shared helper and the emulator's own (it imports nothing of ours) never raise.
    assert not same_secret("expected-secret", given)
    assert same_secret(given, given)
    assert not pkce_matches("verifier", given, "S256")
    assert not pkce_matches(given + "x", given, "plain")
