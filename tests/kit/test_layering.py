"""The kit's stores sit where the product's do: no web framework, no commits (the edge owns
the transaction; savepoints are fine). Only kit/app.py knows the web app."""

from __future__ import annotations

from pathlib import Path

import pytest

import lwa_accounts.kit
from tests.flows.test_layering import calls_commit, imported_modules, is_web

KIT_DIR = Path(lwa_accounts.kit.__file__).parent
STORE_SIDE = ["accounts.py", "sessions.py", "cleanup.py", "hashers.py", "mapping.py"]


@pytest.mark.parametrize("name", STORE_SIDE)
def test_store_side_imports_no_web_framework_and_never_commits(name: str) -> None:
    source = (KIT_DIR / name).read_text()
    assert not {m for m in imported_modules(source) if is_web(m)}
    assert not calls_commit(source)


def test_only_app_imports_the_web_side() -> None:
    webby = sorted(
        path.name
        for path in KIT_DIR.glob("*.py")
        if any(is_web(m) for m in imported_modules(path.read_text()))
    )
    assert webby == ["app.py"]
