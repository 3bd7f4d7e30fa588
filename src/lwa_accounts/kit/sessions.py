"""Sessions whose accounts live in the company's table.

``SqlSessionStore.resolve`` joins our ``accounts`` table; here the session row is read
alone and its account comes from the account store (the foreign table), so a disabled or
deleted foreign user has no live session.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.core.models import Account, Session
from lwa_accounts.interfaces import AccountStore, Clock
from lwa_accounts.settings import Settings
from lwa_accounts.store.schema import sessions
from lwa_accounts.store.sessions import (
    TOKEN_MAX_LENGTH,
    SqlSessionStore,
    hash_token,
    session_from_row,
)


class ForeignAccountSessionStore(SqlSessionStore):
    def __init__(
        self,
        connection: AsyncConnection,
        clock: Clock,
        settings: Settings,
        accounts: AccountStore,
    ) -> None:
        super().__init__(connection, clock, settings)
        self._accounts = accounts

    async def resolve(self, token: str, *, touch: bool = True) -> tuple[Session, Account] | None:
        """The live session for ``token`` and its enabled account, or None (as the parent)."""
        if not token or len(token) > TOKEN_MAX_LENGTH:
            return None
        stmt = select(sessions).where(sessions.c.token_hash == hash_token(token))
        row = (await self._conn.execute(stmt)).first()
        if row is None:
            return None
        session = session_from_row(row)
        now = self._clock.now()
        if session.revoked_at is not None or now >= session.expires_at:
            return None
        account = await self._accounts.get(session.account_id)
        if account is None or account.disabled:
            return None
        if touch and session.touch_due(now):
            touched = await self._touch(session, now)
            if touched is None:  # revoked by a concurrent transaction meanwhile
                return None
            session = touched
        return session, account
