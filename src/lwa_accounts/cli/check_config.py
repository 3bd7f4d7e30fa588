"""``lwa-accounts check-config``: the production verdicts on this environment's settings.

Prints every refusal and warning ``config_check.check`` finds (the same ones ``serve``
refuses to start on), one sentence each, and exits 1 when there is a refusal. It starts
nothing and opens no database. ``--settings-reference`` prints the generated table of every
setting instead (``--write FILE`` puts it between the markers in FILE).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lwa_accounts import config_check, settings_doc
from lwa_accounts.config_check import Verdict
from lwa_accounts.settings import Settings

REFUSED = 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="check the settings for production without starting anything",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="how many server processes will share these settings on this host",
    )
    parser.add_argument(
        "--settings-reference",
        action="store_true",
        help="print the reference of every setting (Markdown), generated from Settings",
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help="with --settings-reference: replace the generated block in FILE",
    )
    parser.set_defaults(handler=_check_config)


def _check_config(args: argparse.Namespace) -> int:
    if args.settings_reference:
        return _reference(args.write)
    if args.write is not None:
        print("lwa-accounts check-config: --write goes with --settings-reference", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("lwa-accounts check-config: --workers must be at least 1", file=sys.stderr)
        return 2
    settings: Settings | None = None
    try:
        settings = Settings()
    except ValidationError as error:
        verdicts = config_check.from_validation_error(error)
    else:
        verdicts = config_check.check(settings, processes=args.workers)
    refused = bool(config_check.refusals(verdicts))
    if args.json:
        print(json.dumps(_report(settings, verdicts, refused), indent=2))
    else:
        _print(settings, verdicts, refused)
    return REFUSED if refused else 0


def fingerprint(key: str) -> str:
    """Enough to tell keys apart across hosts, nothing to guess a long random key from."""
    return hashlib.sha256(b"lwa-accounts key fingerprint\0" + key.encode()).hexdigest()[:12]


def _fingerprints(settings: Settings) -> list[str]:
    return [
        fingerprint(key) if len(key) >= config_check.MIN_SECRET_KEY_LENGTH else "(too short)"
        for key in settings.configured_secret_keys
    ]


def _report(settings: Settings | None, verdicts: list[Verdict], refused: bool) -> dict[str, Any]:
    return {
        "env": settings.env if settings is not None else None,
        "ok": not refused,
        "refusals": [v.as_dict() for v in verdicts if v.level == "refusal"],
        "warnings": [v.as_dict() for v in verdicts if v.level == "warning"],
        "secret_keys": _fingerprints(settings) if settings is not None else [],
    }


def _print(settings: Settings | None, verdicts: list[Verdict], refused: bool) -> None:
    if settings is not None:
        print(f"LWA_ACCOUNTS_ENV={settings.env}")
        keys = _fingerprints(settings)
        if keys:
            print(f"secret keys (the first signs): {', '.join(keys)}")
    for verdict in verdicts:
        print(f"{'refused' if verdict.level == 'refusal' else 'warning'}: {verdict.sentence}")
    if refused:
        count = len(config_check.refusals(verdicts))
        print(f"result: refused, {count} problem{'s' if count > 1 else ''} to fix")
    elif settings is not None and settings.env != "production":
        print("result: ok (the production rules apply only with LWA_ACCOUNTS_ENV=production)")
    else:
        print("result: ok, fit for production")


def _reference(write: Path | None) -> int:
    missing = settings_doc.undocumented()
    if missing:
        names = ", ".join(settings_doc.variable(name) for name in missing)
        print(f"lwa-accounts check-config: no description for {names}", file=sys.stderr)
        return REFUSED
    table = settings_doc.reference()
    if write is None:
        print(table, end="")
        return 0
    try:
        document = write.read_text(encoding="utf-8")
        write.write_text(settings_doc.replace_block(document, table), encoding="utf-8")
    except (OSError, settings_doc.MarkersMissing) as error:
        print(f"lwa-accounts check-config: cannot update {write}: {error}", file=sys.stderr)
        return REFUSED
    print(f"updated the settings reference in {write}")
    return 0
