"""Flows are shared by pages, the JSON API and the CLI: they never import a web framework
and never commit (the edge owns the transaction)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lwa_accounts.flows

FLOWS_DIR = Path(lwa_accounts.flows.__file__).parent
WEB_ROOTS = {"fastapi", "starlette", "uvicorn", "jinja2", "lwa_accounts.web"}
MY_FLOWS = ["accounts.py", "sessions.py"]


def imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def calls_commit(source: str) -> bool:
    return any(
        isinstance(node, ast.Attribute) and node.attr in ("commit", "begin")
        for node in ast.walk(ast.parse(source))
    )


def is_web(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in WEB_ROOTS)


@pytest.mark.parametrize("name", MY_FLOWS)
def test_flow_imports_no_web_framework_and_never_commits(name: str) -> None:
    source = (FLOWS_DIR / name).read_text()
    assert not {m for m in imported_modules(source) if is_web(m)}
    assert not calls_commit(source)


def test_the_checks_can_fail() -> None:
    sample = "from starlette.requests import Request\nimport fastapi\nawait conn.commit()\n"
    assert {m for m in imported_modules(sample) if is_web(m)} == {"starlette.requests", "fastapi"}
    assert calls_commit(sample)
