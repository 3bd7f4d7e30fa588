"""A store's own savepoint around a write that may hit a unique constraint.

The savepoint keeps the caller's transaction usable after the conflict (PostgreSQL aborts
a transaction at its first error). Inside a savepoint the caller already holds
(``IdentityStore.atomic()``: create-and-link) a second one buys nothing: the conflict
rolls back to the caller's, two statements (``SAVEPOINT``/``RELEASE``) fewer per write.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


def own_savepoint(connection: AsyncConnection) -> AbstractAsyncContextManager[Any]:
    if connection.in_nested_transaction():
        return nullcontext()
    return connection.begin_nested()
