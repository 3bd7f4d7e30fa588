"""Structured logs: one JSON object per line in production, readable lines in development.

Everything goes through the standard library's root handler, whose formatter is
structlog's ``ProcessorFormatter``: our structlog events (the request log, Amazon calls)
and plain ``logging`` records (uvicorn's error log, httpx, the outage logs) come out in the
same shape, ``timestamp``, ``level``, ``logger``, ``event`` and the event's fields, plus
the request id of the request being served, if any. ``redaction.RedactSecrets`` sits on
the handler and ``redaction.redact_processor`` runs last before rendering, so no token,
code, handle, password or full e-mail reaches a line in either format.

``LWA_ACCOUNTS_LOG_FORMAT=json|console`` chooses; unset, production logs JSON and the
rest console. uvicorn's own access log is off (``web/server.py``): ``web/observe.py``
writes one ``request`` line per request instead, with the route template, never the path.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from typing import Any

import structlog

from lwa_accounts import redaction
from lwa_accounts.settings import Settings

# The request being served (set by web/observe.py): its id joins every line logged meanwhile.
current_request_id: ContextVar[str | None] = ContextVar("lwa_request_id", default=None)

HANDLER = "structured"


def _add_request_id(_logger: object, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = current_request_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


_TIMESTAMP = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")

# Added to every line, ours and the standard library's alike.
_COMMON: list[Any] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _TIMESTAMP,
    _add_request_id,
]


def _renderer(log_format: str) -> Any:
    if log_format == "json":
        return structlog.processors.JSONRenderer(sort_keys=False)
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def formatter(log_format: str) -> structlog.stdlib.ProcessorFormatter:
    """The one formatter: renders structlog events and foreign records alike."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_COMMON,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redaction.redact_processor,
            _renderer(log_format),
        ],
    )


def configure_structlog() -> None:
    """structlog hands its events to the standard library (idempotent, process-wide)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_COMMON,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``lwa-accounts serve`` (uvicorn applies it in
    each worker): one stderr handler with ``RedactSecrets`` and the structured formatter on
    the root; uvicorn's loggers propagate to it; its access log is silenced (ours replaces
    it), as are aiosqlite's DEBUG lines (every SQL statement with its parameters, twice)."""
    configure_structlog()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {redaction.FILTER_NAME: {"()": redaction.RedactSecrets}},
        "formatters": {
            HANDLER: {"()": formatter, "log_format": settings.effective_log_format},
        },
        "handlers": {
            HANDLER: {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": HANDLER,
                "filters": [redaction.FILTER_NAME],
            }
        },
        "root": {"handlers": [HANDLER], "level": settings.log_level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "aiosqlite": {"level": "INFO"},
        },
    }


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger that writes through the standard library (so through the
    handlers and their ``RedactSecrets``), never structlog's default print logger."""
    if not structlog.is_configured():
        configure_structlog()
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
