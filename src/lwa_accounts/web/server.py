"""Run the app under uvicorn: one process, or a parent supervising N worker processes.

Every handler uvicorn sets up, and the root handler our own loggers and httpx log to,
carries ``redaction.RedactSecrets``: no token, handle, code or e-mail reaches a log line.

With N workers the parent binds the socket, migrates the database once (development), reads
the development secret key once (so no two workers generate different ones), exports an
empty ``PROMETHEUS_MULTIPROC_DIR`` and starts the workers (``web/supervisor.py``); each
builds the app from the parent's settings (``web/workers.WorkerApp``).

Stopping (SIGTERM or SIGINT, either mode): no new connection is accepted, requests in
flight get ``settings.shutdown_grace_seconds`` to finish, then the lifespan closes the
database pool, Redis and the Amazon client, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from lwa_accounts.errors import DatabaseUnavailable
from lwa_accounts.logs import logging_config
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.web.app import create_app
from lwa_accounts.web.supervisor import Supervisor, metrics_directory, metrics_worker_exit
from lwa_accounts.web.workers import WorkerApp

# The server's hard cap on a request's head, as a multiple of the app's 431 limit.
SERVER_HEADER_FACTOR = 4


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options shared by both modes."""
    return {
        "log_level": settings.log_level.lower(),
        "log_config": logging_config(settings),  # structured, redacted (lwa_accounts/logs.py)
        "access_log": False,  # web/observe.py logs each request, by route template
        # The app applies LWA_ACCOUNTS_TRUSTED_PROXIES itself; uvicorn's own handling
        # would trust X-Forwarded-For from any loopback peer.
        "proxy_headers": False,
        # h11 stops reading a header block past this size (400 and close) while it
        # arrives; the app answers 431 below it (settings.max_header_bytes). httptools
        # has no such limit: it buffered a 16 MB header.
        "http": "h11",
        "h11_max_incomplete_event_size": SERVER_HEADER_FACTOR * settings.max_header_bytes,
        "server_header": False,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT; the exit code (0 after a clean stop, 3 when the app could
    not start). In development the database is migrated first (by the lifespan with one
    worker, by this parent with several)."""
    if workers == 1:
        app = create_app(settings)
        config = uvicorn.Config(app, host=host, port=port, **server_options(settings))
        server = uvicorn.Server(config)
        _announce(host, port, workers)
        # After its graceful shutdown uvicorn raises the signal it stopped for again, for
        # the handler that was there before: make that a no-op (SIGTERM would otherwise
        # kill the process, exit 143) and SIGINT's KeyboardInterrupt a normal end, so a
        # clean stop exits 0 with one worker as with several.
        previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0 if server.started else STARTUP_FAILURE
    return _serve_workers(settings, host=host, port=port, workers=workers)


def _serve_workers(settings: Settings, *, host: str, port: int, workers: int) -> int:
    if settings.is_development:
        try:
            asyncio.run(_migrate(settings))
        except DatabaseUnavailable:
            print(
                "lwa-accounts serve: the database does not answer, so it cannot be migrated "
                "(check LWA_ACCOUNTS_DATABASE_URL).",
                file=sys.stderr,
                flush=True,
            )
            return STARTUP_FAILURE
    settings.signing_keys  # noqa: B018 - read (and in development created) once, before any worker
    config = uvicorn.Config(
        WorkerApp(settings, parent_pid=os.getpid()),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **server_options(settings),
    )
    with metrics_directory():
        sock = config.bind_socket()
        supervisor = Supervisor(config, [sock], on_worker_exit=metrics_worker_exit())
        _announce(host, port, workers)
        supervisor.run()
    return STARTUP_FAILURE if supervisor.startup_failed else 0


async def _migrate(settings: Settings) -> None:
    database = Database.from_settings(settings)
    try:
        await database.upgrade()
    finally:
        await database.dispose()


def _announce(host: str, port: int, workers: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    plural = "s" if workers > 1 else ""
    print(f"lwa-accounts serving on http://{shown}:{port}/ ({workers} worker{plural})", flush=True)
