"""core/ is pure: it imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import lwa_accounts.core

CORE_DIR = Path(lwa_accounts.core.__file__).parent


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("lwa_accounts."):
                roots.add(node.module)
            else:
                roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_only_stdlib_and_core() -> None:
    offenders: dict[str, set[str]] = {}
    for path in CORE_DIR.rglob("*.py"):
        bad = {
            name
            for name in _imported_roots(path)
            if not (name in sys.stdlib_module_names or name.startswith("lwa_accounts.core"))
            and name != "__future__"
        }
        if bad:
            offenders[path.name] = bad
    assert offenders == {}


def test_purity_check_catches_a_third_party_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text(
        "import httpx\nfrom sqlalchemy import select\nfrom lwa_accounts.web import x\n"
    )
    assert _imported_roots(sample) == {"httpx", "sqlalchemy", "lwa_accounts.web"}
