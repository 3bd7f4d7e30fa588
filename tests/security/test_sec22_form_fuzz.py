"""security.md item 22 ("Prove it": fuzzing the HTML forms): every POST form of the app,
enumerated from its router, fed with garbage - non-ASCII, NUL, invalid UTF-8 (escaped and
raw), huge fields (just over and far over the body limit), multipart with files, repeated
fields, wrong content types, JSON - by a signed-in browser holding a valid CSRF token (so
the garbage gets past the CSRF check and reaches the form code): never a 5xx, always a
4xx, or 200/303 for input that is accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from lwa_accounts.web.request_limits import MAX_BODY_BYTES
from tests.security.routes import form_paths_of
from tests.web.conftest import (
    api_register,
    csrf_from,
    make_settings,
    page_sign_in,
    serve_app,
)

FORM_PATHS = form_paths_of(make_settings(Path("/nonexistent-never-opened")))
FIELDS = [
    "username",
    "password",
    "email",
    "name",
    "next",
    "code",
    "decision",
    "postal_code",
    "current_password",
    "new_password",
    "confirm_password",
    "login",
    "token",
    "amazon_link",
]
ACCEPTED = {200, 303}
URLENCODED = "application/x-www-form-urlencoded"


def assert_not_a_server_error(response: httpx.Response, what: object) -> None:
    status = response.status_code
    assert status in ACCEPTED or 400 <= status < 500, (what, status, response.text[:300])
    assert "Traceback" not in response.text


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A signed-in browser and its CSRF token (limits raised: the fuzzing is not a
    brute-force attack, and the limits have tests of their own)."""
    settings = make_settings(
        tmp_path,
        password_limit_per_account="1000/minute",
        password_limit_per_account_ip="1000/minute",
        password_limit_per_ip="1000/minute",
        registration_limit_per_ip="1000/minute",
        user_code_limit_per_ip="1000/minute",
        user_code_limit_per_code="1000/minute",
    )
    async with serve_app(settings) as client:
        await api_register(client)
        signed_in = await page_sign_in(client)
        assert signed_in.status_code == 303, signed_in.text
        token = csrf_from((await client.get("/account")).text)
        yield client, token


def _urlencoded(token: str, fields: dict[str, bytes]) -> bytes:
    pairs = [("csrf_token", _bytes(token)), *fields.items()]
    return "&".join(f"{name}={quote_from_bytes(value)}" for name, value in pairs).encode()


def corpus(token: str) -> list[tuple[str, dict[str, object]]]:
    """(what, httpx request arguments): the fixed garbage."""
    every = dict.fromkeys(FIELDS, "é\x00\u202e😀")
    raw_invalid = b"csrf_token=" + token.encode() + b"&username=\xff\xfe&password=\xed\xa0\x80"
    escaped_invalid = _urlencoded(token, dict.fromkeys(FIELDS, b"\xff\xfe\xed\xa0\x80\xc0"))
    form = {"Content-Type": URLENCODED}
    return [
        ("non_ascii_nul_bidi", {"data": {"csrf_token": token, **every}}),
        ("invalid_utf8_raw", {"content": raw_invalid, "headers": form}),
        ("invalid_utf8_escaped", {"content": escaped_invalid, "headers": form}),
        ("field_10kb", {"data": {"csrf_token": token, **dict.fromkeys(FIELDS, "é" * 5000)}}),
        (
            "just_over_body_limit",
            {"content": _urlencoded(token, {"name": b"a" * MAX_BODY_BYTES}), "headers": form},
        ),
        (
            "far_over_body_limit",
            {
                "content": _urlencoded(token, {"name": b"a" * (16 * MAX_BODY_BYTES)}),
                "headers": form,
            },
        ),
        (
            "multipart_with_file",
            {
                "data": {"csrf_token": token, "username": "ada"},
                "files": {"password": ("p.txt", b"\x00\xff secret", "application/octet-stream")},
            },
        ),
        (
            "multipart_non_ascii",
            {"data": {"csrf_token": token, **every}, "files": {"x": ("", b"")}},
        ),
        (
            "repeated_fields",
            {
                "content": "&".join(
                    [f"csrf_token={token}"] * 3 + [f"{name}=a&{name}=é" for name in FIELDS]
                ).encode(),
                "headers": form,
            },
        ),
        ("too_many_fields", {"data": {"csrf_token": token, **{f"f{n}": "x" for n in range(200)}}}),
        ("json_body", {"json": {"csrf_token": token, "username": "ada", "password": "x"}}),
        (
            "text_plain",
            {"content": f"csrf_token={token}".encode(), "headers": {"Content-Type": "text/plain"}},
        ),
        ("no_content_type", {"content": f"csrf_token={token}".encode()}),
        (
            "broken_multipart",
            {
                "content": b"--x\r\nContent-Disposition: form-data\r\n\r\n",
                "headers": {"Content-Type": "multipart/form-data; boundary=x"},
            },
        ),
        ("empty", {"content": b"", "headers": form}),
    ]


@pytest.mark.parametrize("path", FORM_PATHS)
async def test_sec22_garbage_to_every_form_is_never_a_server_error(
    browser: tuple[httpx.AsyncClient, str], path: str
) -> None:
    client, token = browser
    for what, request in corpus(token):
        response = await client.post(path, **request)  # type: ignore[arg-type]
        assert_not_a_server_error(response, (path, what))
    # Refused garbage is refused as such: the wrong media types and the oversized bodies.
    oversized = await client.post(path, **dict(corpus(token))["far_over_body_limit"])  # type: ignore[arg-type]
    assert oversized.status_code == 413


FIELD_VALUES = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.sampled_from(["", "\x00", "é", "\ud800", "A" * 5000, "/\\evil.example", "%00%ff"]),
)


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def test_sec22_form_fuzz_enumerates_every_form() -> None:
    assert len(FORM_PATHS) >= 13


@pytest.mark.slow
@pytest.mark.parametrize("path", FORM_PATHS)
@hypothesis_settings(
    max_examples=15,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(
    fields=st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES, max_size=len(FIELDS)),
    multipart=st.booleans(),
    forged=st.one_of(st.none(), FIELD_VALUES),
)
async def test_sec22_generated_garbage_to_every_form_is_never_a_server_error(
    browser: tuple[httpx.AsyncClient, str],
    path: str,
    fields: dict[str, str | bytes],
    multipart: bool,
    forged: str | bytes | None,
) -> None:
    client, real_token = browser
    # Mostly the real token (the garbage reaches the form code), sometimes garbage too.
    token = real_token if forged is None else _text(forged)
    encoded = {name: _bytes(value) for name, value in fields.items()}
    if multipart:
        parts = {"csrf_token": _bytes(token), **encoded}
        response = await client.post(
            path, files={name: (None, value) for name, value in parts.items()}
        )
    else:
        response = await client.post(
            path, content=_urlencoded(token, encoded), headers={"Content-Type": URLENCODED}
        )
    assert_not_a_server_error(response, (path, fields, multipart))
