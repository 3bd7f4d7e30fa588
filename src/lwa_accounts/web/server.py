"""Run the app under uvicorn (one process; scale out with more processes or hosts).

Every handler uvicorn sets up, and the root handler our own loggers and httpx log to,
carries ``redaction.RedactSecrets``: no token, handle, code or e-mail reaches a log line.
"""

from __future__ import annotations

import uvicorn

from lwa_accounts.logs import logging_config
from lwa_accounts.settings import Settings
from lwa_accounts.web.app import create_app

# The server's hard cap on a request's head, as a multiple of the app's 431 limit.
SERVER_HEADER_FACTOR = 4


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Serve until interrupted. In development the lifespan migrates the database first."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings),  # structured, redacted (lwa_accounts/logs.py)
        access_log=False,  # web/observe.py logs each request, by route template
        # The app applies LWA_ACCOUNTS_TRUSTED_PROXIES itself; uvicorn's own handling
        # would trust X-Forwarded-For from any loopback peer.
        proxy_headers=False,
        # h11 stops reading a header block past this size (400 and close) while it
        # arrives; the app answers 431 below it (settings.max_header_bytes). httptools
        # has no such limit: it buffered a 16 MB header.
        http="h11",
        h11_max_incomplete_event_size=SERVER_HEADER_FACTOR * settings.max_header_bytes,
        server_header=False,
    )
    server = uvicorn.Server(config)
    print(f"lwa-accounts serving on http://{_url_host(host)}:{port}/", flush=True)
    server.run()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
