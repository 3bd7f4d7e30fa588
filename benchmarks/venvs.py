"""The peers' virtualenvs: made from the package index, pinned, cached under var/bench/venvs.

One virtualenv per requirements file, named after a hash of its contents, so changing a pin
makes a new one and an unchanged file is reused as is.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "benchmarks" / "requirements"
VENVS = ROOT / "var" / "bench" / "venvs"


def python_for(name: str) -> Path:
    """The interpreter of peer ``name``'s virtualenv, made first if needed."""
    requirements = REQUIREMENTS / f"{name}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:10]
    venv = VENVS / f"{name}-{digest}"
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        print(f"bench: installing {name} into {venv} (once)", file=sys.stderr, flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True
        )
        (venv / ".installed").touch()
    return python


def versions(python: Path, packages: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    )
    done = subprocess.run(  # noqa: S603
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=True
    )
    import json

    found: dict[str, str] = json.loads(done.stdout)
    return found
