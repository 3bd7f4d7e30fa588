"""docs/operations.md read as data: its sections, their ```sh blocks and the commands in them,
and the setting names and route paths its prose mentions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"

_FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\s*$", re.M | re.S)
_SETTING = re.compile(r"\bLWA_ACCOUNTS_[A-Z0-9_]+")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
# A route as the prose writes it: `/path`, `GET /path`, `/path?query`, `/path {body}`.
_ROUTE = re.compile(r"^(?:(?:GET|POST|PUT|PATCH|DELETE|HEAD) )?(/[A-Za-z0-9_{}\-./]*)(?:[?\s].*)?$")


@dataclass(frozen=True)
class Block:
    heading: str  # the nearest heading above the block (## or ###)
    language: str
    text: str

    @property
    def commands(self) -> list[str]:
        return commands_of(self.text)


def text() -> str:
    return OPERATIONS.read_text(encoding="utf-8")


def sections(markdown: str | None = None) -> dict[str, str]:
    """``## `` heading -> its body (up to the next ``## ``), fenced blocks included."""
    found: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    in_fence = False
    for line in (markdown if markdown is not None else text()).splitlines(keepends=True):
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            if current is not None:
                found[current] = "".join(lines)
            current, lines = line[3:].strip(), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        found[current] = "".join(lines)
    return found


def blocks(markdown: str, language: str = "sh") -> list[Block]:
    """The fenced blocks of ``language`` in ``markdown``, each with its nearest heading."""
    result = []
    for match in _FENCE.finditer(markdown):
        if match.group(1) != language:
            continue
        before = markdown[: match.start()]
        headings = re.findall(r"^#{2,3} (.+)$", before, re.M)
        result.append(Block(headings[-1].strip() if headings else "", language, match.group(2)))
    return result


def block_under(markdown: str, heading: str) -> Block:
    """The one ``sh`` block under the ``###`` heading ``heading``."""
    found = [b for b in blocks(markdown) if b.heading == heading]
    assert len(found) == 1, f"expected one sh block under {heading!r}, found {len(found)}"
    return found[0]


def commands_of(script: str) -> list[str]:
    """The commands of a shell block: lines joined across trailing backslashes, without
    blank lines and comments."""
    commands: list[str] = []
    pending = ""
    for raw in script.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        commands.append(" ".join((pending + line).split()))
        pending = ""
    if pending:
        commands.append(" ".join(pending.split()))
    return commands


def setting_names(markdown: str) -> set[str]:
    return set(_SETTING.findall(markdown))


def route_paths(markdown: str) -> set[str]:
    """Paths of this service the prose names in code spans (outside fenced blocks)."""
    prose = _FENCE.sub("", markdown)
    paths = set()
    for span in _CODE_SPAN.findall(prose):
        found = _ROUTE.match(span.strip())
        if found and found.group(1) != "/":
            paths.add(found.group(1).rstrip("/") or "/")
    return paths


def run_block(block: Block, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a block exactly as written, with bash (stopping at the first failure), the
    test interpreter's ``lwa-accounts`` first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    full = {**env, "PATH": bin_dir + os.pathsep + env.get("PATH", os.environ.get("PATH", ""))}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.text],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
