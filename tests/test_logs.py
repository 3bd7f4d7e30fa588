"""logs.py: serve's logging configuration in both formats; redaction covers structlog events
(every field but the known-safe ones), plain records and tracebacks alike."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwa_accounts import logs, redaction
from lwa_accounts.testing import offline_settings

SECRETS = ("Atza|IwEBsecret", "flw_abcdefghijklmnop", "BCDF-GHJK", "ada.lovelace")


@pytest.fixture
def captured(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """serve's dictConfig in the given format, its one handler writing to a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "aiosqlite")
    saved_named = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names
    }
    settings = offline_settings(tmp_path, log_format=request.param, log_level="DEBUG")
    logging.config.dictConfig(logs.logging_config(settings))
    stream = io.StringIO()
    (handler,) = root.handlers
    assert any(isinstance(f, redaction.RedactSecrets) for f in handler.filters)
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, propagate) in saved_named.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


def emit_everything() -> None:
    events = logs.get_logger("lwa_accounts.test")
    token = logs.current_request_id.set("req-1")
    try:
        events.info(
            "checked",
            detail=f"token {SECRETS[0]} for ada.lovelace@example.com",
            nested={"flow": SECRETS[1], "list": [f"/activate?code={SECRETS[2]}"]},
            route="/api/v1/flows/{flow_id}",
            account_id="acc_0123456789abcdefghijklmnop",
            request_id="5f0c7d1e-3b9a-4c2e-9d7f-0a1b2c3d4e5f",
        )
        logging.getLogger("httpx").info("HTTP Request: GET http://a/x?access_token=%s", SECRETS[0])
        logging.getLogger("uvicorn.error").warning("poll /api/v1/flows/%s/link", SECRETS[1])
        try:
            raise ValueError(f"no flow {SECRETS[1]} for ada.lovelace@example.com")
        except ValueError:
            logging.getLogger("lwa_accounts.x").exception("failed")
            events.exception("failed structured")
        logging.getLogger("uvicorn.access").info('"GET /activate?code=%s" 200', SECRETS[2])
    finally:
        logs.current_request_id.reset(token)


@pytest.mark.parametrize("captured", ["json"], indirect=True)
def test_json_lines_are_redacted_and_carry_the_fields(captured: io.StringIO) -> None:
    emit_everything()
    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(lines) == 5  # uvicorn's access log is off
    assert all({"timestamp", "level", "logger", "event"} <= set(line) for line in lines)
    structured = lines[0]
    assert structured["event"] == "checked"
    assert structured["route"] == "/api/v1/flows/{flow_id}"  # safe fields as they are
    assert structured["account_id"] == "acc_0123456789abcdefghijklmnop"
    assert structured["request_id"] == "5f0c7d1e-3b9a-4c2e-9d7f-0a1b2c3d4e5f"
    assert "[redacted]@example.com" in structured["detail"]
    assert lines[1]["request_id"] == "req-1"  # a plain record during a request
    assert lines[1]["logger"] == "httpx"
    assert lines[1]["timestamp"].endswith("Z")
    assert "Traceback" in lines[3]["exception"]
    assert "Traceback" in lines[4]["exception"]
    for secret in SECRETS:
        assert secret not in text, secret


@pytest.mark.parametrize("captured", ["console"], indirect=True)
def test_console_lines_are_redacted_too(captured: io.StringIO) -> None:
    emit_everything()
    text = captured.getvalue()
    assert "checked" in text
    assert "route=/api/v1/flows/{flow_id}" in text
    assert "\x1b[" not in text  # no colours when not on a terminal
    for secret in SECRETS:
        assert secret not in text, secret


def test_the_format_follows_the_environment(tmp_path: Path) -> None:
    assert offline_settings(tmp_path).effective_log_format == "console"
    assert offline_settings(tmp_path, log_format="json").effective_log_format == "json"
    production = offline_settings(tmp_path).model_copy(update={"env": "production"})
    assert production.effective_log_format == "json"


def test_redact_event_keeps_numbers_and_safe_fields() -> None:
    event = {"status": 200, "duration_ms": 1.5, "event": "Atza|x", "ok": True, "n": None}
    assert redaction.redact_event(event) == {
        "status": 200,
        "duration_ms": 1.5,
        "event": "[redacted]",
        "ok": True,
        "n": None,
    }
