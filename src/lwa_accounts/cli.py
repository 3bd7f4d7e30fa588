"""The ``lwa-accounts`` command.

Each area registers its own sub-commands (``register(subparsers)`` in the modules listed in
``COMMAND_MODULES``); this module only builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from lwa_accounts import redaction

# Modules that define ``register(subparsers: argparse._SubParsersAction) -> None``. Each
# sub-parser sets ``handler=`` (a callable taking the parsed namespace, returning an exit code).
COMMAND_MODULES: tuple[str, ...] = (
    "lwa_accounts.store.cli",
    "lwa_accounts.emulator.cli",
    "lwa_accounts.web.cli",
    "lwa_accounts.flows.audit_cli",
    "lwa_accounts.tv.cli",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lwa-accounts",
        description="Accounts with Login with Amazon for TVs and other devices.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever a command logs is redacted (`serve` configures its own redacting handlers).
    redaction.install()
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
