"""Log redaction (security.md item 1): the pure functions, the filter, the logging set-up."""

from __future__ import annotations

import logging
import logging.config
import secrets
import string
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from uvicorn.logging import AccessFormatter

from lwa_accounts import redaction
from lwa_accounts.redaction import REDACTED, RedactSecrets, redact_target, redact_text

URL_SAFE = string.ascii_letters + string.digits + "-_"
# Values a client may put in a query: anything printable but the separators.
query_values = st.text(
    alphabet=st.characters(blacklist_characters="&;#", blacklist_categories=("Cs", "Cc")),
    min_size=1,
    max_size=60,
)
keys = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12)
handles = st.text(alphabet=URL_SAFE, min_size=8, max_size=64)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "/auth/amazon/callback?code=ANcode123&state=s7ate",
            "/auth/amazon/callback?code=[redacted]&state=[redacted]",
        ),
        ("/activate?code=BCDF-GHJK", "/activate?code=[redacted]"),
        ("/api/v1/me?access_token=Atza|abc", "/api/v1/me?access_token=[redacted]"),
        ("/api/v1/flows/flw_abc", "/api/v1/flows/[redacted]"),
        ("/api/v1/flows/flw_abc/link", "/api/v1/flows/[redacted]/link"),
        ("/API/V1/FLOWS/flw_abc/register", "/API/V1/FLOWS/[redacted]/register"),
        (
            "/api/v1/amazon/device-authorizations/xyz/poll",
            "/api/v1/amazon/device-authorizations/[redacted]/poll",
        ),
        ("/_amazon/_emulator/codes/QWERTY/approve", "/_amazon/_emulator/codes/[redacted]/approve"),
        ("/prefix/api/v1/flows/flw_x/handoff", "/prefix/api/v1/flows/[redacted]/handoff"),
        ("/x?flag&empty=&a=1;b=2", "/x?[redacted]&empty=[redacted]&a=[redacted];b=[redacted]"),
        ("/cb#access_token=abc", "/cb#[redacted]"),
        ("/u/ada.lovelace@example.com", "/u/[redacted]@example.com"),
    ],
)
def test_sec01_redact_target_examples(target: str, expected: str) -> None:
    assert redact_target(target) == expected


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/api/v1/flows/poll",
        "/api/v1/flows/link",
        "/api/v1/flows/register",
        "/api/v1/flows/handoff",
        "/api/v1/amazon/device-authorizations",
        "/api/v1/amazon/device-authorizations/poll",
        "/static/swagger/swagger-ui-bundle.js",
        "/auth/amazon/callback",
        "/activate",
        "/api/openapi.json",
    ],
)
def test_targets_without_secrets_are_unchanged(target: str) -> None:
    assert redact_target(target) == target


@given(st.lists(st.tuples(keys, query_values), min_size=1, max_size=6))
def test_sec01_every_query_value_is_replaced_and_every_key_kept(
    pairs: list[tuple[str, str]],
) -> None:
    query = "&".join(f"{key}=SECRET{value}" for key, value in pairs)
    redacted = redact_target("/auth/amazon/callback?" + query)
    assert "SECRET" not in redacted
    assert redacted == "/auth/amazon/callback?" + "&".join(f"{k}={REDACTED}" for k, _ in pairs)


@given(handles, st.sampled_from(["", "/link", "/register", "/handoff"]))
def test_sec01_a_flow_id_in_a_retired_path_never_survives(handle: str, suffix: str) -> None:
    flow_id = "flw_" + handle
    assert redact_target(f"/api/v1/flows/{flow_id}{suffix}") == f"/api/v1/flows/{REDACTED}{suffix}"


@given(handles)
def test_sec01_handles_in_other_paths_never_survive(handle: str) -> None:
    for before, after in (
        ("/api/v1/amazon/device-authorizations/", "/poll"),
        ("/_amazon/_emulator/codes/", "/approve"),
    ):
        assert redact_target(before + handle + after) == before + REDACTED + after


@given(st.integers(min_value=18, max_value=64))
def test_sec01_a_token_anywhere_in_a_path_never_survives(size: int) -> None:
    # A client that wrongly puts a token into the path of any endpoint.
    token = secrets.token_urlsafe(size)
    assert token not in redact_target(f"/api/v1/me/{token}")
    assert token not in redact_target(f"/{token}/x?y=1")


@given(st.text(max_size=200))
def test_redaction_is_idempotent_and_total(text: str) -> None:
    once = redact_target(text)
    assert redact_target(once) == once
    assert redact_text(redact_text(text)) == redact_text(text)


def test_sec01_redact_text_finds_secrets_in_messages() -> None:
    session_token = secrets.token_urlsafe(32)
    message = (
        "HTTP Request: GET http://127.0.0.1:8000/_amazon/auth/o2/tokeninfo?access_token=Atza|x1 "
        f'"HTTP/1.1 200 OK"; unhandled error on POST /api/v1/flows/flw_abc/link; '
        f"token {session_token}; Atzr|refresh-me; mail grace.hopper@example.org; "
        "postgresql://user:hunter2@db.internal:5432/accounts"
    )
    redacted = redact_text(message)
    for secret in (
        "Atza|x1",
        "flw_abc",
        session_token,
        "Atzr|refresh-me",
        "grace.hopper@",
        "hunter2",
    ):
        assert secret not in redacted, secret
    assert "tokeninfo?access_token=[redacted]" in redacted
    assert "/api/v1/flows/[redacted]/link" in redacted
    assert "@example.org" in redacted  # the domain is kept: enough to debug
    # Ordinary words, file paths and identifiers are left alone.
    plain = 'File "/work/src/lwa_accounts/web/api/amazon.py", line 12, in link_flow'
    assert redact_text(plain) == plain


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def test_sec01_the_filter_redacts_uvicorns_access_log_and_keeps_its_format() -> None:
    record = _record(
        "uvicorn.access",
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/auth/amazon/callback?code=abc&state=def",
        "1.1",
        303,
    )
    assert RedactSecrets().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert line == (
        '127.0.0.1:5000 - "GET /auth/amazon/callback?code=[redacted]&state=[redacted] '
        'HTTP/1.1" 303 See Other'
    )


def test_sec01_the_filter_redacts_messages_arguments_and_tracebacks() -> None:
    flow_id = "flw_" + secrets.token_urlsafe(32)
    record = _record("lwa_accounts.web", "on %s %s (%d)", "POST", f"/api/v1/flows/{flow_id}", 3)
    try:
        raise ValueError(f"no such flow {flow_id}")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.__dict__["color_message"] = "on %s %s (%d)"
    assert RedactSecrets().filter(record)
    formatted = logging.Formatter("%(message)s").format(record)
    assert flow_id not in formatted
    assert "on POST /api/v1/flows/[redacted] (3)" in formatted
    assert "ValueError: no such flow [redacted]" in formatted
    assert "color_message" not in record.__dict__


def test_a_record_without_secrets_is_left_as_it_was() -> None:
    record = _record("lwa_accounts.x", "started %d workers", 4)
    assert RedactSecrets().filter(record)
    assert (record.msg, record.args) == ("started %d workers", (4,))


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """dictConfig changes process-wide state: put it back afterwards."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "aiosqlite"]
    saved = {
        name: (
            list(logging.getLogger(name).handlers),
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
        )
        for name in names
    }
    last_resort_filters = list(logging.lastResort.filters) if logging.lastResort else []
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    if logging.lastResort is not None:
        logging.lastResort.filters[:] = last_resort_filters


@pytest.mark.usefixtures("restored_logging")
def test_sec01_install_covers_the_last_resort_handler() -> None:
    redaction.install()
    redaction.install()  # twice is once
    assert logging.lastResort is not None
    assert sum(isinstance(f, RedactSecrets) for f in logging.lastResort.filters) == 1


def test_sec01_the_lwa_clients_own_httpx_filter_still_redacts_tokeninfo(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import lwa_accounts.lwa.client  # noqa: F401  (installs its filter on the httpx logger)

    caplog.set_level(logging.INFO, logger="httpx")
    url = httpx.URL("https://api.amazon.com/auth/o2/tokeninfo?access_token=Atza|tok3n")
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"', "GET", url, "HTTP/1.1", 200, "OK"
    )
    assert "Atza|tok3n" not in caplog.text
    assert "tokeninfo?access_token=[redacted]" in caplog.text


@pytest.mark.parametrize(
    "hostile",
    [
        "/x@" + "a" * 60_000,
        "/" + ("a" * 70 + "@") * 900,
        "/" + "a." * 30_000 + "://",
        "/?" + "a=" * 30_000,
        "/api/v1/flows/" + "flw_" * 15_000,
    ],
)
def test_sec01_redaction_stays_linear_on_hostile_targets(hostile: str) -> None:
    # Every request target passes through the access-log filter: a pattern that backtracks
    # quadratically would let one long URL stall the server (the e-mail one once took 66 s).
    started = time.perf_counter()
    redact_target(hostile)
    redact_text(f'"GET {hostile} HTTP/1.1" 404')
    assert time.perf_counter() - started < 5
