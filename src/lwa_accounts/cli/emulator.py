"""``lwa-accounts emulator serve``: the emulated Amazon as a standalone server."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from lwa_accounts.emulator.config import CustomerSeed, EmulatorConfig
from lwa_accounts.emulator.control import CustomerIn
from lwa_accounts.errors import EmulatorRefused
from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
    Settings,
)

_CUSTOMERS = TypeAdapter(list[CustomerIn])


class SeedFileError(ValueError):
    pass


def load_customers(path: Path) -> list[CustomerSeed]:
    """A JSON or YAML list of customer objects (name, email, password?, postal_code?, ...)."""
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SeedFileError(f"cannot read {path}: {exc}") from None
    try:
        return [CustomerSeed(**item.model_dump()) for item in _CUSTOMERS.validate_python(data)]
    except ValidationError as exc:
        raise SeedFileError(f"{path} is not a list of customers: {exc}") from None


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lwa_accounts.emulator.app import create_app

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"lwa-accounts emulator: invalid settings: {exc}", file=sys.stderr)
        return 2
    redirect_uris: list[str] = args.redirect_uri or [
        settings.public_url.rstrip("/") + "/auth/amazon/callback"
    ]
    try:
        customers = load_customers(args.customers) if args.customers else None
        config = EmulatorConfig(
            web_redirect_uris=redirect_uris,
            enforce_poll_interval=settings.emulator_enforce_interval,
            environment=settings.env,
        )
        if customers is not None:
            config.customers = customers
        app = create_app(config)
    except (SeedFileError, EmulatorRefused) as exc:
        detail = exc.detail if isinstance(exc, EmulatorRefused) else str(exc)
        print(f"lwa-accounts emulator: {detail}", file=sys.stderr)
        return 2
    base = f"http://{args.host}:{args.port}"
    print(f"Emulated Amazon (not the real amazon.com) on {base}")
    print(f"  web client:    {EMULATED_WEB_CLIENT_ID} / secret {EMULATED_WEB_CLIENT_SECRET}")
    print(f"                 redirect URIs: {', '.join(redirect_uris)}")
    print(f"  device client: {EMULATED_DEVICE_CLIENT_ID} (no secret)")
    for customer in config.customers:
        print(f"  customer:      {customer.name} <{customer.email}> password {customer.password}")
    sys.stdout.flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower())
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulator = subparsers.add_parser("emulator", help="the offline emulated Amazon")
    commands = emulator.add_subparsers(dest="emulator_command", required=True, metavar="COMMAND")
    run = commands.add_parser("serve", help="serve the emulated Amazon over HTTP")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8001)
    run.add_argument("--customers", type=Path, help="JSON or YAML list of seed customers")
    run.add_argument(
        "--redirect-uri",
        action="append",
        help="a redirect URI for the development web client (repeatable; "
        "default: <public_url>/auth/amazon/callback)",
    )
    run.set_defaults(handler=serve)
