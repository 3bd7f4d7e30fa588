"""SQL implementation of ``interfaces.EmailCodeStore``: one-time e-mail proofs.

Rows are read ``FOR UPDATE`` on PostgreSQL (SQLite's write transaction already excludes
every other writer), and ``mark_used`` is a compare-and-set, so two redemptions of one
link racing each other cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.core.email_codes import MAX_WRONG_CODES, EmailCode, EmailCodePurpose
from lwa_accounts.store.schema import email_codes

_c = email_codes.c
_INSERT = insert(email_codes)


def _code(row: Row[Any]) -> EmailCode:
    m = row._mapping
    return EmailCode(
        id=m[_c.id],
        purpose=cast(EmailCodePurpose, m[_c.purpose]),
        account_id=m[_c.account_id],
        email=m[_c.email],
        link_digest=m[_c.link_digest],
        code_digest=m[_c.code_digest],
        bound_to=m[_c.bound_to],
        created_at=m[_c.created_at],
        expires_at=m[_c.expires_at],
        used_at=m[_c.used_at],
        attempts=m[_c.attempts],
    )


class SqlEmailCodeStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    def _locked(self, stmt: Select[Any]) -> Select[Any]:
        return stmt if self._conn.dialect.name == "sqlite" else stmt.with_for_update()

    async def create(self, code: EmailCode) -> None:
        await self._conn.execute(
            _INSERT,
            {
                "id": code.id,
                "purpose": code.purpose,
                "account_id": code.account_id,
                "email": code.email,
                "link_digest": code.link_digest,
                "code_digest": code.code_digest,
                "bound_to": code.bound_to,
                "created_at": code.created_at,
                "expires_at": code.expires_at,
                "used_at": code.used_at,
                "attempts": code.attempts,
            },
        )

    async def get_for_update(self, code_id: str) -> EmailCode | None:
        row = (
            await self._conn.execute(self._locked(select(email_codes).where(_c.id == code_id)))
        ).first()
        return _code(row) if row else None

    async def live(
        self,
        account_id: str,
        purpose: EmailCodePurpose,
        *,
        now: datetime,
        bound_to: str | None = None,
    ) -> EmailCode | None:
        """The newest usable proof of ``purpose`` for the account (and ``bound_to``)."""
        stmt = (
            select(email_codes)
            .where(
                _c.account_id == account_id,
                _c.purpose == purpose,
                _c.used_at.is_(None),
                _c.expires_at > now,
                _c.attempts < MAX_WRONG_CODES,
                _c.bound_to.is_(None) if bound_to is None else _c.bound_to == bound_to,
            )
            .order_by(_c.created_at.desc(), _c.id)
            .limit(1)
        )
        row = (await self._conn.execute(self._locked(stmt))).first()
        return _code(row) if row else None

    async def mark_used(self, code_id: str, *, now: datetime) -> bool:
        """Spend the proof; False when it was spent already (a concurrent redemption)."""
        result = await self._conn.execute(
            update(email_codes).where(_c.id == code_id, _c.used_at.is_(None)).values(used_at=now)
        )
        return bool(result.rowcount)

    async def count_wrong(self, code_id: str) -> int:
        """One more wrong code typed against the proof; the attempts so far."""
        result = await self._conn.execute(
            update(email_codes)
            .where(_c.id == code_id)
            .values(attempts=_c.attempts + 1)
            .returning(_c.attempts)
        )
        return int(result.scalar_one_or_none() or 0)

    async def void(
        self, account_id: str, purposes: Sequence[EmailCodePurpose], *, now: datetime
    ) -> int:
        """Spend every unused proof of ``purposes`` for the account (a new one replaces
        them, or a password reset cancels pending e-mail changes); how many."""
        if not purposes:
            return 0
        result = await self._conn.execute(
            update(email_codes)
            .where(
                _c.account_id == account_id,
                _c.purpose.in_(list(purposes)),
                _c.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return int(result.rowcount or 0)
