"""The emulator is an independent oracle: it imports nothing from lwa_accounts.lwa or .core,
and from the rest of the package only settings (the dev client constants) and errors."""

from __future__ import annotations

import ast
from pathlib import Path

import lwa_accounts.emulator

EMULATOR_DIR = Path(lwa_accounts.emulator.__file__).parent
ALLOWED = {"lwa_accounts.settings", "lwa_accounts.errors"}


def _package_imports(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lwa_accounts"))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("lwa_accounts")
        ):
            found.add(node.module or "")
    return found


def test_emulator_imports_only_itself_settings_and_errors() -> None:
    offenders = {
        path.name: bad
        for path in EMULATOR_DIR.rglob("*.py")
        if (
            bad := {
                name
                for name in _package_imports(path.read_text())
                if name not in ALLOWED and not name.startswith("lwa_accounts.emulator")
            }
        )
    }
    assert offenders == {}


def test_the_check_sees_forbidden_imports() -> None:
    sample = "import lwa_accounts.lwa.client\nfrom lwa_accounts.core.models import Account\n"
    assert _package_imports(sample) == {"lwa_accounts.lwa.client", "lwa_accounts.core.models"}
