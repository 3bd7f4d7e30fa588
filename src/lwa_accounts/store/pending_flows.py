"""SQL implementation of ``interfaces.PendingFlowStore``: pending link / registration steps.

Only the SHA-256 of a flow id is stored. Status changes are compare-and-set updates
(``WHERE status = ...``), so a flow is used at most once even when two requests race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.core.models import (
    AmazonProfile,
    PendingFlow,
    PendingFlowKind,
    PendingFlowStatus,
    SessionKind,
)
from lwa_accounts.store.schema import pending_flows


def _kind(value: str) -> PendingFlowKind:
    if value == "link":
        return "link"
    if value == "registration":
        return "registration"
    raise ValueError(f"unknown flow kind {value!r}")


def _status(value: str) -> PendingFlowStatus:
    if value == "pending":
        return "pending"
    if value == "completed":
        return "completed"
    if value == "spent":
        return "spent"
    raise ValueError(f"unknown flow status {value!r}")


def _session_kind(value: str) -> SessionKind:
    if value == "browser":
        return "browser"
    if value == "device":
        return "device"
    raise ValueError(f"unknown session kind {value!r}")


def flow_from_row(row: Row[Any]) -> PendingFlow:
    m = row._mapping
    c = pending_flows.c
    return PendingFlow(
        id_hash=m[c.id_hash],
        kind=_kind(m[c.kind]),
        status=_status(m[c.status]),
        profile=AmazonProfile(
            user_id=m[c.amazon_user_id],
            client_id=m[c.client_id],
            name=m[c.name],
            email=m[c.email],
            postal_code=m[c.postal_code],
        ),
        target_account_id=m[c.target_account_id],
        completed_account_id=m[c.completed_account_id],
        attempts_left=m[c.attempts_left],
        can_register_instead=m[c.can_register_instead],
        missing=tuple(name for name in m[c.missing].split(",") if name),
        session_kind=_session_kind(m[c.session_kind]),
        device_name=m[c.device_name],
        binding_hash=m[c.binding_hash],
        created_at=m[c.created_at],
        expires_at=m[c.expires_at],
    )


class SqlPendingFlowStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def create(self, flow: PendingFlow) -> PendingFlow:
        await self._conn.execute(
            insert(pending_flows).values(
                id_hash=flow.id_hash,
                kind=flow.kind,
                status=flow.status,
                amazon_user_id=flow.profile.user_id,
                client_id=flow.profile.client_id,
                name=flow.profile.name,
                email=flow.profile.email,
                postal_code=flow.profile.postal_code,
                target_account_id=flow.target_account_id,
                completed_account_id=flow.completed_account_id,
                attempts_left=flow.attempts_left,
                can_register_instead=flow.can_register_instead,
                missing=",".join(flow.missing),
                session_kind=flow.session_kind,
                device_name=flow.device_name,
                binding_hash=flow.binding_hash,
                created_at=flow.created_at,
                expires_at=flow.expires_at,
            )
        )
        return flow

    async def get(self, id_hash: str, *, for_update: bool = False) -> PendingFlow | None:
        """The flow, optionally under a row lock (PostgreSQL; SQLite serialises writers)."""
        stmt = select(pending_flows).where(pending_flows.c.id_hash == id_hash)
        if for_update and self._conn.dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        row = (await self._conn.execute(stmt)).first()
        return flow_from_row(row) if row is not None else None

    async def use_attempt(self, id_hash: str) -> int:
        """Count one wrong password; returns the attempts left (never below zero)."""
        c = pending_flows.c
        await self._conn.execute(
            update(pending_flows)
            .where(c.id_hash == id_hash, c.attempts_left > 0)
            .values(attempts_left=c.attempts_left - 1)
        )
        left = await self._conn.scalar(select(c.attempts_left).where(c.id_hash == id_hash))
        return int(left or 0)

    async def transition(
        self,
        id_hash: str,
        *,
        from_status: PendingFlowStatus,
        to_status: PendingFlowStatus,
        completed_account_id: str | None = None,
    ) -> bool:
        """Compare-and-set the status; False when the flow was not in ``from_status``."""
        values: dict[str, Any] = {"status": to_status}
        if completed_account_id is not None:
            values["completed_account_id"] = completed_account_id
        result = await self._conn.execute(
            update(pending_flows)
            .where(pending_flows.c.id_hash == id_hash, pending_flows.c.status == from_status)
            .values(**values)
        )
        return result.rowcount == 1

    async def become_registration(self, id_hash: str, *, missing: tuple[str, ...]) -> bool:
        """A pending link flow turns into a registration flow ("create a separate account
        instead"): no target account, no password attempts, and no Amazon email (it is the
        other account's). Same id, binding and expiry; False when it was no pending link."""
        c = pending_flows.c
        result = await self._conn.execute(
            update(pending_flows)
            .where(c.id_hash == id_hash, c.kind == "link", c.status == "pending")
            .values(
                kind="registration",
                target_account_id=None,
                can_register_instead=False,
                attempts_left=0,
                missing=",".join(missing),
                email=None,
            )
        )
        return result.rowcount == 1

    async def delete_expired(self, now: datetime) -> int:
        result = await self._conn.execute(
            delete(pending_flows).where(pending_flows.c.expires_at <= now)
        )
        return result.rowcount

    async def purge_expired(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` flows that expired before ``before``, finished or not (a
        finished flow is refused from then on either way)."""
        c = pending_flows.c
        ids = select(c.id_hash).where(c.expires_at < before).limit(limit)
        result = await self._conn.execute(delete(pending_flows).where(c.id_hash.in_(ids)))
        return int(result.rowcount)
