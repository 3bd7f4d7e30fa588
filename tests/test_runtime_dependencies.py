"""What serving installs (``make run``, the wheel in the image) is the package's own
dependencies, never the ``test`` extra: no module under ``src/`` imports a test-only
package, and every dependency is pinned. ``make smoke-install`` proves the same at run time
(the wheel alone in a fresh venv serves, migrates and signs in)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import lwa_accounts
from tests.flows.test_layering import imported_modules

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(lwa_accounts.__file__).parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Distribution name -> the top-level module it installs, where they differ.
IMPORT_NAMES = {"pytest-asyncio": "pytest_asyncio", "asgi-lifespan": "asgi_lifespan"}


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>~!; ]", requirement, maxsplit=1)[0].lower()


def test_every_dependency_is_pinned_exactly() -> None:
    for requirement in [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["test"]]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[\w.]+", requirement), requirement


def test_no_module_of_the_package_imports_a_test_only_package() -> None:
    runtime = {_name(r) for r in PROJECT["dependencies"]}
    test_only = {_name(r) for r in PROJECT["optional-dependencies"]["test"]} - runtime
    modules = {IMPORT_NAMES.get(name, name.replace("-", "_")) for name in test_only}
    modules -= {"types_pyyaml"}  # type stubs only, never imported
    assert {"pytest", "hypothesis", "playwright", "asgi_lifespan"} <= modules
    offenders = {}
    for path in SRC.rglob("*.py"):
        package = ".".join(path.parent.relative_to(SRC.parent).parts)
        tops = {name.split(".")[0] for name in imported_modules(path.read_text(), package)}
        if bad := tops & modules:
            offenders[str(path.relative_to(SRC))] = bad
    assert offenders == {}
    sample = "import pytest\nfrom hypothesis import given\n"  # the check can fail
    assert {m.split(".")[0] for m in imported_modules(sample)} & modules == {
        "pytest",
        "hypothesis",
    }
