"""The settings reference in docs/operations.md, generated from ``Settings`` so it cannot drift.

``reference()`` renders every field (environment variable, field name, type, default,
description) as a Markdown table; ``replace_block`` puts it between the two marker comments
of a document. ``lwa-accounts check-config --settings-reference [--write FILE]`` is the
command (``cli/check_config.py``); ``tests/test_settings_doc.py`` fails when the block in
docs/operations.md is not what this module renders.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Final, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from lwa_accounts.settings import Settings

ENV_PREFIX: Final = "LWA_ACCOUNTS_"
REGENERATE: Final = "lwa-accounts check-config --settings-reference --write docs/operations.md"
START: Final = f"<!-- settings-reference: start. Generated from Settings by `{REGENERATE}` -->"
END: Final = "<!-- settings-reference: end -->"


class MarkersMissing(ValueError):
    """The document lacks the start / end marker comments (or has them out of order)."""


def variable(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _kind(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in get_args(annotation))
    if origin in (Union, types.UnionType):
        kinds = [_kind(arg) for arg in get_args(annotation) if arg is not type(None)]
        return " or ".join(kinds)
    if origin is tuple:
        return "comma-separated list"
    return {
        bool: "boolean (`1`/`0`, `true`/`false`)",
        int: "integer",
        float: "number",
        str: "text",
        Path: "path",
        SecretStr: "secret text",
    }.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> str:
    parts = []
    for constraint in field.metadata:
        if isinstance(constraint, Gt):
            parts.append(f"> {constraint.gt}")
        elif isinstance(constraint, Ge):
            parts.append(f"≥ {constraint.ge}")
        elif isinstance(constraint, Lt):
            parts.append(f"< {constraint.lt}")
        elif isinstance(constraint, Le):
            parts.append(f"≤ {constraint.le}")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`" if value else "empty"
    if value == "":
        return "empty"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference() -> str:
    """The Markdown table of every setting, in ``Settings``' order."""
    lines = [
        "| variable | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        kind = _kind(field.annotation)
        bounds = _bounds(field)
        if bounds:
            kind = f"{kind} {bounds}"
        description = field.description or ""
        lines.append(
            f"| `{variable(name)}` (`{name}`) | {_cell(kind)} | {_cell(_default(field))} "
            f"| {_cell(description)} |"
        )
    return "\n".join(lines) + "\n"


def undocumented() -> list[str]:
    """Settings with no description (the reference would show an empty cell)."""
    return [name for name, field in Settings.model_fields.items() if not field.description]


def replace_block(document: str, block: str) -> str:
    """``document`` with everything between the markers replaced by ``block``."""
    start = document.find(START)
    end = document.find(END)
    if start < 0 or end < start:
        raise MarkersMissing(f"the document needs the lines {START!r} and {END!r}, in order")
    return document[: start + len(START)] + "\n\n" + block + "\n" + document[end:]


def block_of(document: str) -> str:
    """What stands between the markers now (as ``replace_block`` writes it)."""
    start = document.find(START)
    end = document.find(END)
    if start < 0 or end < start:
        raise MarkersMissing(f"the document needs the lines {START!r} and {END!r}, in order")
    return document[start + len(START) : end].strip("\n") + "\n"
