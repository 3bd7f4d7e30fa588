"""Count the SQL statements a request sends (``before_cursor_execute`` on the engine).

Transaction brackets (``BEGIN``/``COMMIT``/``ROLLBACK``) are counted apart from the
statements: SQLite's ``BEGIN IMMEDIATE`` is a statement to its driver, asyncpg's ``BEGIN``
is not, so only the statements compare across dialects. Savepoints are statements (each is
a round trip).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_BRACKETS = ("BEGIN", "COMMIT", "ROLLBACK")


@dataclass
class Statements:
    sql: list[str] = field(default_factory=list)
    brackets: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.sql)

    def matching(self, fragment: str) -> list[str]:
        return [s for s in self.sql if fragment.lower() in s.lower()]

    def __str__(self) -> str:
        return "\n".join(f"{i + 1:2}. {' '.join(s.split())[:160]}" for i, s in enumerate(self.sql))


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[Statements]:
    seen = Statements()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        head = statement.lstrip().upper()
        (seen.brackets if head.startswith(_BRACKETS) else seen.sql).append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
