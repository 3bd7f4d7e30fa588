"""What ``ON DELETE CASCADE`` did for our own accounts, for a user deleted from the
company's table.

Without it a deleted user's sessions would simply stop resolving, but an Amazon link to
the deleted id would remain, and a table that reuses ids (SQLite ``INTEGER PRIMARY KEY``
without AUTOINCREMENT reuses the largest one) would hand that link to the next new user.
"""

from __future__ import annotations

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.store.schema import amazon_identities, device_grants, pending_flows, sessions


async def forget_account(connection: AsyncConnection, account_id: str) -> int:
    """Delete our rows about ``account_id`` in the caller's transaction; how many."""
    statements = [
        delete(device_grants).where(device_grants.c.account_id == account_id),
        delete(pending_flows).where(
            or_(
                pending_flows.c.target_account_id == account_id,
                pending_flows.c.completed_account_id == account_id,
            )
        ),
        delete(amazon_identities).where(amazon_identities.c.account_id == account_id),
        delete(sessions).where(sessions.c.account_id == account_id),
    ]
    total = 0
    for statement in statements:
        total += (await connection.execute(statement)).rowcount
    return total
