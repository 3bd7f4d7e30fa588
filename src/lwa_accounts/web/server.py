"""Run the app under uvicorn (one process; scale out with more processes or hosts).

Every handler uvicorn sets up, and the root handler our own loggers and httpx log to,
carries ``redaction.RedactSecrets``: no token, handle, code or e-mail reaches a log line.
"""

from __future__ import annotations

import uvicorn

from lwa_accounts.redaction import logging_config
from lwa_accounts.settings import Settings
from lwa_accounts.web.app import create_app


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Serve until interrupted. In development the lifespan migrates the database first."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.log_level),
        proxy_headers=True,
        server_header=False,
    )
    server = uvicorn.Server(config)
    print(f"lwa-accounts serving on http://{_url_host(host)}:{port}/", flush=True)
    server.run()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
