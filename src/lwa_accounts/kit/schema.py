"""Our tables without foreign keys to our own ``accounts`` table.

Sessions, Amazon identities, pending flows and device grants declare
``FOREIGN KEY (account_id) REFERENCES accounts(id)`` (migrations 0001-0003). With the kit,
accounts live in the company's table, so those keys must go; everything else (the other
foreign keys, checks, indexes) stays. ``detach_from_accounts`` runs after the regular
migrations and is idempotent, so the product's migration chain stays the one source of
truth and a later migration that adds such a key is handled by running it again.
"""

from __future__ import annotations

import threading
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    ForeignKeyConstraint,
    MetaData,
    Table,
    create_engine,
    event,
    inspect,
    make_url,
)
from sqlalchemy.engine import Connection

from lwa_accounts.store import schema

ACCOUNTS = schema.accounts.name
# SQLite rebuilds tables for this: one rebuild per process at a time.
_sqlite_lock = threading.Lock()


def account_foreign_keys(connection: Connection) -> list[tuple[str, str]]:
    """``(table, constraint name)`` of every foreign key that refers to ``accounts``."""
    inspector = inspect(connection)
    found = []
    for table in sorted(set(inspector.get_table_names()) - {ACCOUNTS}):
        for fk in inspector.get_foreign_keys(table):
            if fk["referred_table"] == ACCOUNTS:
                found.append((table, fk["name"] or ""))
    return found


def tables_without_account_keys() -> MetaData:
    """A copy of our schema in which nothing refers to ``accounts``."""
    copy = MetaData(naming_convention=schema.metadata.naming_convention)
    for table in schema.metadata.sorted_tables:
        clone = table.to_metadata(copy)
        for constraint in list(clone.foreign_key_constraints):
            if constraint.elements[0].target_fullname.startswith(ACCOUNTS + "."):
                _drop_foreign_key(clone, constraint)
    return copy


def _drop_foreign_key(table: Table, constraint: ForeignKeyConstraint) -> None:
    table.constraints.discard(constraint)
    for fk in constraint.elements:
        fk.parent.foreign_keys.discard(fk)
        table.foreign_keys.discard(fk)


def detach_postgresql(connection: Connection) -> list[str]:
    """Drop the keys in place (transactional DDL). Returns the tables changed."""
    quote = connection.dialect.identifier_preparer.quote
    changed = []
    for table, name in account_foreign_keys(connection):
        connection.exec_driver_sql(
            f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {quote(name)}"
        )
        changed.append(table)
    return changed


def detach_sqlite(url: str) -> list[str]:
    """SQLite cannot drop a constraint: rebuild each table from ``tables_without_account_keys``
    (Alembic's batch mode: copy, drop, rename), with foreign-key enforcement off so that
    dropping the old table cascades nowhere."""
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_engine(sync_url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The pragma is a no-op inside a transaction, so it goes first; then SQLAlchemy,
        # not the driver, decides where the (one, atomic) transaction begins.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    target = tables_without_account_keys()
    try:
        with _sqlite_lock, engine.begin() as connection:
            tables = sorted({table for table, _ in account_foreign_keys(connection)})
            unknown = [t for t in tables if t not in target.tables]
            if unknown:
                raise RuntimeError(f"tables unknown to the schema refer to accounts: {unknown}")
            operations = Operations(MigrationContext.configure(connection))
            for name in tables:
                with operations.batch_alter_table(
                    name, recreate="always", copy_from=target.tables[name]
                ):
                    pass  # the copy itself is the change
            return tables
    finally:
        engine.dispose()
