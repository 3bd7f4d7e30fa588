"""The ``lwa-accounts`` command, and every other command line of the project.

Each module of this package registers its own sub-commands (``register(subparsers)`` in the
modules listed in ``COMMAND_MODULES``); this module only builds the parser and dispatches.
The modules are imported only when the parser is built, so importing the package stays cheap
(``kit`` holds ``python -m lwa_accounts.kit``, which is not a sub-command).

Commands are an edge, like the web app: they parse arguments, open what they need, call
flows and stores, print. Nothing outside this package parses arguments, and nothing
under ``store/``, ``flows/`` or ``emulator/`` imports it (tests/cli/test_layering.py).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

from lwa_accounts import redaction

# Modules that define ``register(subparsers: argparse._SubParsersAction) -> None``. Each
# sub-parser sets ``handler=`` (a callable taking the parsed namespace, returning an exit code).
# The order is the order ``--help`` lists them in.
COMMAND_MODULES: tuple[str, ...] = (
    "lwa_accounts.cli.db",
    "lwa_accounts.cli.emulator",
    "lwa_accounts.cli.serve",
    "lwa_accounts.cli.check_config",
    "lwa_accounts.cli.accounts",
    "lwa_accounts.cli.audit",
    "lwa_accounts.cli.admin",
    "lwa_accounts.cli.device_login",
    "lwa_accounts.cli.mail",
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
