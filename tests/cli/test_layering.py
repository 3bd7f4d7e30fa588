"""Every command line lives under ``cli/``: no other module parses arguments, and the layers
below the edges (``store/``, ``flows/``, the independent ``emulator/``) never import a command.
``store/`` imports no flow and no web module either: the arrow that would run back up
(``db prune`` driving ``flows.housekeeping``) starts from ``cli/db.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

import lwa_accounts
from tests.flows.test_layering import imported_modules as _imports

SRC = Path(lwa_accounts.__file__).parent
CLI_DIR = SRC / "cli"


def _under(module: str, *roots: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def _package(path: Path) -> str:
    # Relative imports resolve against the module's own package (the reader defaults to flows).
    return ".".join(path.parent.relative_to(SRC.parent).parts)


def _offenders(directory: Path, *roots: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(SRC)): bad
        for path in sorted(directory.rglob("*.py"))
        if (bad := {m for m in _imports(path.read_text(), _package(path)) if _under(m, *roots)})
    }


def test_only_cli_parses_arguments() -> None:
    outside = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if CLI_DIR not in path.parents and "argparse" in _imports(path.read_text(), _package(path))
    }
    assert outside == set()


@pytest.mark.parametrize("layer", ["store", "flows", "emulator", "core", "lwa"])
def test_lower_layers_never_import_a_command(layer: str) -> None:
    assert _offenders(SRC / layer, "lwa_accounts.cli") == {}


def test_store_imports_no_flow_and_no_web() -> None:
    assert _offenders(SRC / "store", "lwa_accounts.flows", "lwa_accounts.web") == {}


def test_the_checks_can_fail() -> None:
    sample = "import argparse\nfrom lwa_accounts.flows import housekeeping\n"
    assert "argparse" in _imports(sample)
    assert _under("lwa_accounts.flows.housekeeping", "lwa_accounts.flows")
    assert not _under("lwa_accounts.flowsy", "lwa_accounts.flows")
    store_module = SRC / "store" / "db.py"
    relative = _imports(
        "from ..flows import housekeeping\nfrom . import schema\n", _package(store_module)
    )
    assert "lwa_accounts.flows.housekeeping" in relative
    assert "lwa_accounts.store.schema" in relative
    assert not any(
        _under(m, "lwa_accounts.flows")
        for m in _imports("from . import schema\n", _package(store_module))
    )
