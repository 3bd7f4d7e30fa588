"""CI runs what the container image and the venv deployment run (docs/operations.md
"Deploy"): `.ci/run` calls `make smoke-install`, which builds the wheel, installs it alone
into a fresh venv, migrates and serves. The smoke itself takes about a minute and runs
once per CI run from `.ci/run`, not from here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_installs_the_wheel_alone_migrates_and_serves() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")]

    def first(target: str) -> int:
        return next(at for at, line in enumerate(commands) if line.split()[:2] == ["make", target])

    # Before the suites, so a broken wheel fails fast; both suites run (side by side).
    assert first("smoke-install") < first("test")
    assert first("smoke-install") < first("test-postgres")
    target = re.search(r"^smoke-install:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert target is not None
    assert target.group(1).endswith("-m tests.smoke_install")
    source = (ROOT / "tests" / "smoke_install.py").read_text()
    ast.parse(source)
    for step in (
        '"-m", "build", "--wheel"',  # python3 -m build --wheel
        '"-m", "venv", venv',  # python3.11 -m venv ...
        '"-m", "pip", "install", "--quiet", wheel',  # .../bin/pip install dist/*.whl
        '"db", "upgrade"',
        '"serve"',
        '"--workers", "2"',
    ):
        assert step in source, step
