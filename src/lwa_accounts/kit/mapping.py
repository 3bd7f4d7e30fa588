"""How a foreign users table maps onto ``core.models.Account``.

The kit reads and writes only the columns named here, through a SQLAlchemy Core ``Table``
built from the mapping (never reflected), so the company's table may hold anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator, TypeEngine


class LegacyTimestamp(TypeDecorator[datetime]):
    """A timestamp column of the foreign table, read back timezone-aware (UTC).

    ``naive=True`` for ``timestamp without time zone`` columns: values are written and read
    as UTC wall time. SQLite has no time zones, so it is always treated that way.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self, *, naive: bool) -> None:
        super().__init__(timezone=not naive)
        self.naive = naive

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if self.naive or dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class UsersTableMapping:
    """Column names of an existing users table (``None``: the table has no such column).

    ``active_column`` (true = may sign in) and ``disabled_column`` (true = may not) are the
    two polarities of the same flag; name at most one. Account ids are the id column's
    value as a string, at most 32 characters (our tables store them in ``VARCHAR(32)``).
    """

    table: str
    id_column: str
    username_column: str
    password_column: str
    email_column: str | None = None
    name_column: str | None = None
    active_column: str | None = None
    disabled_column: str | None = None
    email_verified_column: str | None = None
    # The account's postal code (profile, synced from Amazon); None: the table has none,
    # and a postal code is then neither stored nor shown.
    postal_code_column: str | None = None
    created_column: str | None = None
    updated_column: str | None = None
    schema: str | None = None
    # True: an integer id the database assigns on insert; False: text ids.
    integer_ids: bool = True
    # Text ids: a factory the kit calls on insert (None: the column's database default).
    new_text_id: Callable[[], str] | None = field(default=None, compare=False)
    # ``timestamp without time zone`` columns hold UTC wall time.
    naive_timestamps: bool = False
    # Written to the password column for accounts without a password (Amazon-created) when
    # the column is NOT NULL; ``None`` writes NULL. Read back as "no password" either way.
    no_password_value: str | None = None

    def __post_init__(self) -> None:
        if self.active_column is not None and self.disabled_column is not None:
            raise ValueError("name either active_column or disabled_column, not both")
        if self.new_text_id is not None and self.integer_ids:
            raise ValueError("new_text_id only applies with integer_ids=False")

    @cached_property
    def core_table(self) -> Table:
        """Built once: SQLAlchemy caches compiled statements per table object."""
        return self.build_table()

    def build_table(self) -> Table:
        """A Core table with only the mapped columns, in its own MetaData."""
        stamp = LegacyTimestamp(naive=self.naive_timestamps)
        id_type: TypeEngine[Any] = Integer() if self.integer_ids else String()
        columns: list[Column[Any]] = [
            Column(self.id_column, id_type, primary_key=True, key="id"),
            Column(self.username_column, String(), key="username"),
            Column(self.password_column, String(), key="password_hash"),
        ]
        optional: list[tuple[str | None, str, TypeEngine[Any] | LegacyTimestamp]] = [
            (self.email_column, "email", String()),
            (self.name_column, "name", String()),
            (self.active_column, "active", Boolean()),
            (self.disabled_column, "disabled", Boolean()),
            (self.email_verified_column, "email_verified", Boolean()),
            (self.postal_code_column, "postal_code", String()),
            (self.created_column, "created_at", stamp),
            (self.updated_column, "updated_at", stamp),
        ]
        columns += [Column(name, type_, key=key) for name, key, type_ in optional if name]
        return Table(self.table, MetaData(), *columns, schema=self.schema)

    def missing_columns(self, connection: Connection) -> list[str]:
        """Mapped columns the database does not have (all of them if the table is missing)."""
        inspector = inspect(connection)
        if not inspector.has_table(self.table, schema=self.schema):
            return [column.name for column in self.core_table.columns]
        present = {c["name"] for c in inspector.get_columns(self.table, schema=self.schema)}
        return [c.name for c in self.core_table.columns if c.name not in present]
