"""SQL implementation of ``interfaces.SessionStore``.

The token is 256 random bits, handed out once; only its SHA-256 is stored, so a leaked
database cannot be replayed as sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.core.models import SESSION_TOUCH_INTERVAL, Account, Session, SessionKind
from lwa_accounts.interfaces import Clock
from lwa_accounts.settings import Settings
from lwa_accounts.store.accounts import account_from_row
from lwa_accounts.store.schema import (
    DEVICE_NAME_MAX,
    IP_MAX,
    USER_AGENT_MAX,
    accounts,
    sessions,
)

SESSION_ID_PREFIX = "ses_"
# A token we issue is 43 characters; anything much longer is not ours and is not hashed.
TOKEN_MAX_LENGTH = 256
TOUCH_INTERVAL = SESSION_TOUCH_INTERVAL  # the kit's store and older imports


# Built once (issue 11): only parameters change between executions.
_INSERT = insert(sessions)
_RESOLVE = (
    select(sessions, accounts)
    .join(accounts, accounts.c.id == sessions.c.account_id)
    .where(sessions.c.token_hash == bindparam("token_hash"))
)
_TOUCH = (
    update(sessions)
    .where(
        sessions.c.id == bindparam("session_id"),
        sessions.c.revoked_at.is_(None),
        sessions.c.idle_expires_at > bindparam("now"),
    )
    .values(last_seen_at=bindparam("now"), idle_expires_at=bindparam("new_idle_expires_at"))
)
_REVOKE = (
    update(sessions)
    .where(
        sessions.c.id == bindparam("session_id"),
        sessions.c.account_id == bindparam("owner_id"),
        sessions.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("now"))
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def session_from_row(row: Row[Any]) -> Session:
    m = row._mapping
    return Session(
        id=m[sessions.c.id],
        account_id=m[sessions.c.account_id],
        kind=m[sessions.c.kind],
        device_name=m[sessions.c.device_name],
        created_at=m[sessions.c.created_at],
        last_seen_at=m[sessions.c.last_seen_at],
        authenticated_at=m[sessions.c.authenticated_at],
        idle_expires_at=m[sessions.c.idle_expires_at],
        absolute_expires_at=m[sessions.c.absolute_expires_at],
        user_agent=m[sessions.c.user_agent],
        ip=m[sessions.c.ip],
        revoked_at=m[sessions.c.revoked_at],
    )


def _clip(value: str | None, limit: int) -> str | None:
    # Headers are client-controlled; a long one must not turn into a database error.
    return value[:limit] if value is not None else None


class SqlSessionStore:
    def __init__(self, connection: AsyncConnection, clock: Clock, settings: Settings) -> None:
        self._conn = connection
        self._clock = clock
        self._settings = settings

    def _lifetimes(self, kind: SessionKind) -> tuple[timedelta, timedelta]:
        s = self._settings
        if kind == "device":
            idle, absolute = s.device_session_idle_seconds, s.device_session_absolute_seconds
        else:
            idle, absolute = s.browser_session_idle_seconds, s.browser_session_absolute_seconds
        return timedelta(seconds=idle), timedelta(seconds=absolute)

    async def create(
        self,
        account_id: str,
        kind: SessionKind,
        *,
        device_name: str | None,
        user_agent: str | None,
        ip: str | None,
    ) -> tuple[str, Session]:
        if kind not in ("browser", "device"):
            raise ValueError(f"unknown session kind {kind!r}")
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        idle, absolute = self._lifetimes(kind)
        absolute_expires_at = now + absolute
        session = Session(
            id=SESSION_ID_PREFIX + secrets.token_urlsafe(16),
            account_id=account_id,
            kind=kind,
            device_name=_clip(device_name, DEVICE_NAME_MAX),
            created_at=now,
            last_seen_at=now,
            authenticated_at=now,
            idle_expires_at=min(now + idle, absolute_expires_at),
            absolute_expires_at=absolute_expires_at,
            user_agent=_clip(user_agent, USER_AGENT_MAX),
            ip=_clip(ip, IP_MAX),
        )
        await self._conn.execute(
            _INSERT,
            {
                "id": session.id,
                "token_hash": hash_token(token),
                "account_id": session.account_id,
                "kind": session.kind,
                "device_name": session.device_name,
                "created_at": session.created_at,
                "last_seen_at": session.last_seen_at,
                "authenticated_at": session.authenticated_at,
                "idle_expires_at": session.idle_expires_at,
                "absolute_expires_at": session.absolute_expires_at,
                "user_agent": session.user_agent,
                "ip": session.ip,
            },
        )
        return token, session

    async def resolve(self, token: str, *, touch: bool = True) -> tuple[Session, Account] | None:
        """The live session for ``token`` and its (enabled) account, or None.

        Unknown, revoked or expired sessions, and sessions of disabled accounts, resolve
        to None. Slides the idle expiry when due (never past the absolute one); with
        ``touch=False`` it never writes (a read-only unit of work: the caller touches).
        """
        if not token or len(token) > TOKEN_MAX_LENGTH:
            return None
        row = (await self._conn.execute(_RESOLVE, {"token_hash": hash_token(token)})).first()
        if row is None:
            return None
        session, account = session_from_row(row), account_from_row(row)
        now = self._clock.now()
        if session.revoked_at is not None or now >= session.expires_at or account.disabled:
            return None
        if touch and session.touch_due(now):
            touched = await self._touch(session, now)
            if touched is None:  # revoked by a concurrent transaction meanwhile
                return None
            session = touched
        return session, account

    async def touch(self, session: Session) -> bool:
        """Slide a live session's idle expiry to now + idle (never past the absolute
        expiry). False when it is no longer live: a touch never revives a session that
        expired or was revoked since it was read."""
        return await self._touch(session, self._clock.now()) is not None

    async def _touch(self, session: Session, now: datetime) -> Session | None:
        idle, _ = self._lifetimes(session.kind)
        idle_expires_at = min(now + idle, session.absolute_expires_at)
        result = await self._conn.execute(
            _TOUCH,
            {"session_id": session.id, "now": now, "new_idle_expires_at": idle_expires_at},
        )
        if result.rowcount == 0:
            return None
        return replace(session, last_seen_at=now, idle_expires_at=idle_expires_at)

    async def get(self, session_id: str) -> Session | None:
        """A session by its public id, live or not."""
        row = (
            await self._conn.execute(select(sessions).where(sessions.c.id == session_id))
        ).first()
        return session_from_row(row) if row is not None else None

    async def mark_authenticated(self, session_id: str) -> bool:
        """Record a re-authentication (password typed again) now. False if no such session."""
        result = await self._conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(authenticated_at=self._clock.now())
        )
        return result.rowcount > 0

    async def list_for_account(self, account_id: str) -> Sequence[Session]:
        """The account's live sessions, most recently used first."""
        now = self._clock.now()
        stmt = (
            select(sessions)
            .where(
                and_(
                    sessions.c.account_id == account_id,
                    sessions.c.revoked_at.is_(None),
                    sessions.c.idle_expires_at > now,
                    sessions.c.absolute_expires_at > now,
                )
            )
            .order_by(sessions.c.last_seen_at.desc(), sessions.c.id)
        )
        return [session_from_row(row) for row in await self._conn.execute(stmt)]

    async def revoke(self, account_id: str, session_id: str) -> bool:
        """Revoke one of the account's sessions; False if it is not theirs or already gone."""
        result = await self._conn.execute(
            _REVOKE, {"session_id": session_id, "owner_id": account_id, "now": self._clock.now()}
        )
        return result.rowcount > 0

    async def revoke_all(self, account_id: str, *, except_session_id: str | None = None) -> int:
        stmt = update(sessions).where(
            sessions.c.account_id == account_id, sessions.c.revoked_at.is_(None)
        )
        if except_session_id is not None:
            stmt = stmt.where(sessions.c.id != except_session_id)
        result = await self._conn.execute(stmt.values(revoked_at=self._clock.now()))
        return int(result.rowcount)

    async def purge_expired(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` sessions expired or revoked before ``before``.

        ``idle_expires_at`` never passes ``absolute_expires_at``, so it alone says when a
        session expired; both lookups use an index (migration 0004_housekeeping).
        """
        deleted = 0
        for condition in (sessions.c.idle_expires_at < before, sessions.c.revoked_at < before):
            if deleted >= limit:
                break
            ids = select(sessions.c.id).where(condition).limit(limit - deleted)
            result = await self._conn.execute(delete(sessions).where(sessions.c.id.in_(ids)))
            deleted += int(result.rowcount)
        return deleted
