"""SQL implementation of ``interfaces.AuditLog``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.core.models import AuditEvent, AuditRecord
from lwa_accounts.store.schema import IP_MAX, audit_events

LIST_MAX = 1000
PAGE_MAX = 1000
DETAIL_MAX = 2000


class SqlAuditLog:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def record(self, event: AuditEvent) -> None:
        await self._conn.execute(_INSERT, [_row(event)])

    async def record_many(self, events: Sequence[AuditEvent]) -> None:
        if events:  # ids ascend in list order on both dialects (executemany keeps order)
            await self._conn.execute(_INSERT, [_row(event) for event in events])

    async def list(
        self, *, account_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> Sequence[AuditEvent]:
        """Newest first."""
        stmt = select(audit_events)
        if account_id is not None:
            stmt = stmt.where(audit_events.c.account_id == account_id)
        if since is not None:
            stmt = stmt.where(audit_events.c.at >= since)
        stmt = stmt.order_by(audit_events.c.at.desc(), audit_events.c.id.desc())
        stmt = stmt.limit(max(0, min(limit, LIST_MAX)))
        return [
            AuditEvent(
                kind=row.kind,
                at=row.at,
                account_id=row.account_id,
                amazon_user_id=row.amazon_user_id,
                client_id=row.client_id,
                ip=row.ip,
                detail=row.detail,
            )
            for row in await self._conn.execute(stmt)
        ]

    async def page(
        self,
        *,
        after: tuple[datetime, int] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        account_id: str | None = None,
        limit: int = 500,
    ) -> Sequence[AuditRecord]:
        """Oldest first by (at, id), strictly after ``after``; served by the index on
        ``at`` (or on ``account_id``), never an OFFSET."""
        c = audit_events.c
        stmt = select(audit_events)
        if account_id is not None:
            stmt = stmt.where(c.account_id == account_id)
        if since is not None:
            stmt = stmt.where(c.at >= since)
        if until is not None:
            stmt = stmt.where(c.at < until)
        if after is not None:
            at, seq = after
            stmt = stmt.where(c.at >= at, or_(c.at > at, and_(c.at == at, c.id > seq)))
        stmt = stmt.order_by(c.at, c.id).limit(max(0, min(limit, PAGE_MAX)))
        return [
            AuditRecord(seq=row.id, event=_event(row)) for row in await self._conn.execute(stmt)
        ]


def _event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        kind=row.kind,
        at=row.at,
        account_id=row.account_id,
        amazon_user_id=row.amazon_user_id,
        client_id=row.client_id,
        ip=row.ip,
        detail=row.detail,
    )


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


# Built once; the values travel as parameters (executemany for several rows).
_INSERT = insert(audit_events)


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "kind": event.kind[:64],
        "at": event.at,
        "account_id": event.account_id,
        "amazon_user_id": _clip(event.amazon_user_id, 128),
        "client_id": _clip(event.client_id, 128),
        "ip": _clip(event.ip, IP_MAX),
        "detail": _clip(event.detail, DETAIL_MAX),
    }
