"""Flows are shared by pages, the JSON API, the CLI and the integration kit: every module
under ``flows/`` (packages too) imports Protocols, never a framework, a driver or a
concrete adapter, and never commits (the unit of work does, ``flows/context.py``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lwa_accounts.flows

FLOWS_DIR = Path(lwa_accounts.flows.__file__).parent
FLOW_MODULES = sorted(str(path.relative_to(FLOWS_DIR)) for path in FLOWS_DIR.rglob("*.py"))
FORBIDDEN = {
    # frameworks, drivers and libraries that belong to the edges or the adapters
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "sqlalchemy",
    "alembic",
    "limits",
    "segno",
    "httpx",
    "redis",
    "argparse",
    # our concrete adapters and edges: flows see them only through interfaces.py
    "lwa_accounts.store",
    "lwa_accounts.web",
    "lwa_accounts.kit",
    "lwa_accounts.throttle",
    "lwa_accounts.cli",
    "lwa_accounts.lwa.client",
    "lwa_accounts.emulator",
}


def package_of(name: str) -> str:
    """``amazon/link.py`` -> ``lwa_accounts.flows.amazon`` (what its relative imports start at)."""
    parts = ["lwa_accounts", "flows", *Path(name).parent.parts]
    return ".".join(parts)


def imported_modules(source: str, package: str = "lwa_accounts.flows") -> set[str]:
    """Every module a source imports, anywhere in it (TYPE_CHECKING blocks and function
    bodies too): relative imports resolved against ``package``, and ``from a import b``
    read as both ``a`` and ``a.b`` (``b`` may be a module: ``from lwa_accounts import web``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def calls_commit(source: str, attrs: tuple[str, ...] = ("commit", "begin")) -> bool:
    return any(
        isinstance(node, ast.Attribute) and node.attr in attrs
        for node in ast.walk(ast.parse(source))
    )


WEB_ROOTS = ("fastapi", "starlette", "uvicorn", "jinja2", "lwa_accounts.web")


def is_web(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in WEB_ROOTS)


def forbidden(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in FORBIDDEN)


def test_every_flow_module_is_checked() -> None:
    assert len(FLOW_MODULES) >= 20
    assert "amazon/link.py" in FLOW_MODULES  # packages are walked too


@pytest.mark.parametrize("name", FLOW_MODULES)
def test_flow_imports_only_protocols_and_never_commits(name: str) -> None:
    source = (FLOWS_DIR / name).read_text()
    assert not {m for m in imported_modules(source, package_of(name)) if forbidden(m)}
    # Not even a savepoint: flows ask the stores for one (``identities.atomic()``).
    assert not calls_commit(source, ("commit", "begin", "begin_nested"))


def test_the_checks_can_fail() -> None:
    sample = (
        "from starlette.requests import Request\nimport fastapi\nimport sqlalchemy as sa\n"
        "from lwa_accounts.store.db import Database\nfrom limits import parse\n"
        "import segno\nawait conn.commit()\n"
    )
    assert {m for m in imported_modules(sample) if forbidden(m)} == {
        "starlette.requests",
        "starlette.requests.Request",
        "fastapi",
        "sqlalchemy",
        "lwa_accounts.store.db",
        "lwa_accounts.store.db.Database",
        "limits",
        "limits.parse",
        "segno",
    }
    assert calls_commit(sample)
    # The spellings that dodge a naive check: a package's module by name, relative imports
    # (from a package's module too), imports only for type checking.
    sneaky = (
        "from typing import TYPE_CHECKING\nfrom lwa_accounts import web\n"
        "from ...throttle import Throttle\nfrom ... import kit\n"
        "if TYPE_CHECKING:\n    from lwa_accounts.cli import main\n"
    )
    assert {m for m in imported_modules(sneaky, package_of("amazon/link.py")) if forbidden(m)} == {
        "lwa_accounts.web",
        "lwa_accounts.throttle",
        "lwa_accounts.throttle.Throttle",
        "lwa_accounts.kit",
        "lwa_accounts.cli",
        "lwa_accounts.cli.main",
    }
    # ...while the flows' own relative imports resolve to what is allowed.
    assert imported_modules("from .pending import Originator", "lwa_accounts.flows.amazon") == {
        "lwa_accounts.flows.amazon.pending",
        "lwa_accounts.flows.amazon.pending.Originator",
    }


def test_importing_every_flow_loads_no_framework_or_driver() -> None:
    """Not only the flows' own imports: nothing they import pulls one in either. The one
    exception is e-mail's templates: a flow renders the mail it queues (``mail/render.py``
    over jinja2, no web templating), so what that module loads is allowed, and nothing
    more."""
    modules = ", ".join(
        "lwa_accounts.flows." + name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in FLOW_MODULES
        if name != "__init__.py"
    )
    probe = (
        "import sys, lwa_accounts.mail.render\n"
        "mail = set(sys.modules)\n"
        f"import {modules}\n"
        "print(sorted(m for m in ('sqlalchemy', 'limits', 'segno', 'fastapi', 'starlette', "
        "'httpx', 'redis', 'jinja2') if m in sys.modules and (m not in mail or m != 'jinja2')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
