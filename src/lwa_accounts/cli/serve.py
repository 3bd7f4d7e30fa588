"""``lwa-accounts serve``: the web app and JSON API on uvicorn (``web/server.py`` runs it)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from lwa_accounts import config_check
from lwa_accounts.settings import Settings, load_settings

REFUSED = 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    serve = subparsers.add_parser("serve", help="serve the web app and JSON API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    # Refuse before anything listens or opens a database, every problem at once.
    try:
        settings = with_listen_address(load_settings(), args.host, args.port)
    except ValidationError as error:
        return _refuse(config_check.from_validation_error(error))
    refused = config_check.refusals(config_check.check(settings))
    if refused:
        return _refuse(refused)

    from lwa_accounts.web.server import serve  # uvicorn is only needed here

    serve(settings, host=args.host, port=args.port)
    return 0


def _refuse(refusals: list[config_check.Verdict]) -> int:
    print("lwa-accounts serve: refusing to start:", file=sys.stderr)
    for verdict in refusals:
        print(f"  {verdict.sentence}", file=sys.stderr)
    return REFUSED


def with_listen_address(settings: Settings, host: str, port: int) -> Settings:
    """Settings whose public URL follows ``--host/--port`` unless PUBLIC_URL was set.

    Amazon redirects back to the public URL, so `make run PORT=9000` must not keep
    pointing at port 8000.
    """
    if "public_url" in settings.model_fields_set:
        return settings
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return settings.model_copy(update={"public_url": f"http://{shown}:{port}"})
