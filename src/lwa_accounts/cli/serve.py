"""``lwa-accounts serve``: the web app and JSON API on uvicorn (``web/server.py`` runs it)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lwa_accounts import config_check
from lwa_accounts.settings import Settings, load_settings
from lwa_accounts.web.workers import WorkersRefused, available_cores, plan_workers

MAX_WORKERS = 256

REFUSED = 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    serve = subparsers.add_parser("serve", help="serve the web app and JSON API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="worker processes (default: LWA_ACCOUNTS_WORKERS, else one per core when the "
        "configuration allows several; see docs/operations.md)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        type=_addresses,
        default=None,
        metavar="ADDRESSES",
        help="comma-separated IPs or CIDRs of the reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (overrides LWA_ACCOUNTS_TRUSTED_PROXIES)",
    )
    serve.set_defaults(handler=_serve)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("--port takes a whole number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError("--port must be between 1 and 65535")
    return port


def _workers(value: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("--workers takes a whole number") from None
    if not 1 <= workers <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"--workers must be between 1 and {MAX_WORKERS}")
    return workers


def _addresses(value: str) -> tuple[str, ...]:
    entries = tuple(part.strip() for part in value.split(",") if part.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{entry!r} is not an IP address or CIDR") from None
    return entries


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = with_listen_address(load_settings(), args.host, args.port)
    except ValidationError as error:
        return _refuse(config_check.from_validation_error(error))
    if args.forwarded_allow_ips is not None:
        settings = settings.model_copy(update={"trusted_proxies": args.forwarded_allow_ips})
    requested = args.workers if args.workers is not None else settings.workers
    try:
        plan = plan_workers(settings, requested, available_cores())
    except WorkersRefused as refusal:
        print(f"lwa-accounts serve: {refusal}", file=sys.stderr)
        return 2
    # Refuse before anything listens or opens a database, every problem at once.
    refused = config_check.refusals(config_check.check(settings, processes=plan.workers))
    if refused:
        return _refuse(refused)
    if plan.note:
        print(f"lwa-accounts serve: {plan.note}.", file=sys.stderr, flush=True)
    if plan.workers > 1 and not _make_metrics_directory():
        return 2

    from lwa_accounts.web.server import serve  # uvicorn is only needed here

    return serve(settings, host=args.host, port=args.port, workers=plan.workers)


def _make_metrics_directory() -> bool:
    """Create the directory PROMETHEUS_MULTIPROC_DIR names, if any. The parent of several
    workers imports the metrics too, and prometheus_client opens its files there at
    import: a missing directory would end in a traceback before
    ``web/supervisor.metrics_directory`` could make (and empty) it."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given:
        return True
    try:
        Path(given).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(
            f"lwa-accounts serve: cannot create PROMETHEUS_MULTIPROC_DIR {given!r}: "
            f"{error.strerror or error}.",
            file=sys.stderr,
        )
        return False
    return True


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
