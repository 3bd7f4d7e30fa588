"""SQL store for device grants, phone hand-offs and server-assisted Amazon code pairs.

Codes are looked up by their SHA-256 digest; the clear codes are never stored. Amazon's
device code, which we must send back to Amazon, is kept sealed (``sealing.Sealer``, bound
to its row's ``id_hash``) and forgotten once the pair is finished. Every state
change is a compare-and-set (``WHERE`` the row is still as it was read), so two polls that
race (two workers, two hosts) cannot both collect the same session: the loser sees False.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.core.device_grant import (
    AmazonAuthorization,
    AmazonAuthorizationStatus,
    DeviceGrant,
    DeviceGrantRecord,
    GrantPurpose,
    GrantStatus,
)
from lwa_accounts.sealing import Purpose, SealBroken, Sealer
from lwa_accounts.store.schema import amazon_device_authorizations, device_grants

DEVICE_CODE_SEAL: Purpose = "amazon-device-code"

logger = logging.getLogger(__name__)

_GRANT_STATUSES: dict[str, GrantStatus] = {
    "pending": "pending",
    "approved": "approved",
    "denied": "denied",
    "consumed": "consumed",
}
_PURPOSES: dict[str, GrantPurpose] = {"device": "device", "handoff": "handoff"}
_AUTH_STATUSES: dict[str, AmazonAuthorizationStatus] = {
    "pending": "pending",
    "done": "done",
    "expired": "expired",
    "denied": "denied",
}


def _same(column: Any, value: object) -> ColumnElement[bool]:
    """``column = value`` that also matches NULL to None (SQL's ``=`` never does)."""
    result: ColumnElement[bool] = column.is_(None) if value is None else column == value
    return result


def grant_from_row(row: Row[Any]) -> DeviceGrantRecord:
    m = row._mapping
    c = device_grants.c
    return DeviceGrantRecord(
        id=m[c.id],
        purpose=_PURPOSES[m[c.purpose]],
        grant=DeviceGrant(
            status=_GRANT_STATUSES[m[c.status]],
            created_at=m[c.created_at],
            expires_at=m[c.expires_at],
            interval=m[c.interval],
            last_poll_at=m[c.last_poll_at],
            account_id=m[c.account_id],
        ),
        device_name=m[c.device_name],
        flow_id_hash=m[c.flow_id_hash],
        sealed_flow_id=m[c.sealed_flow_id],
        ip=m[c.ip],
    )


def _open_device_code(sealer: Sealer, id_hash: str, sealed: str | None) -> str | None:
    """Amazon's device code; None when it is gone or does not open (altered, or a row from
    before sealing): the authorization can then only expire (flows/tv_amazon.py)."""
    if sealed is None:
        return None
    try:
        return sealer.open(DEVICE_CODE_SEAL, sealed, aad=id_hash)
    except SealBroken:
        # Possible tampering with the database: make it visible (never log the value).
        logger.warning(
            "sealed %s value did not open: altered, copied from another row, or sealed with "
            "another secret key",
            DEVICE_CODE_SEAL,
            extra={"seal_purpose": DEVICE_CODE_SEAL},
        )
        return None


def authorization_from_row(row: Row[Any], sealer: Sealer) -> AmazonAuthorization:
    m = row._mapping
    c = amazon_device_authorizations.c
    return AmazonAuthorization(
        id_hash=m[c.id_hash],
        status=_AUTH_STATUSES[m[c.status]],
        user_code=m[c.user_code],
        device_code=_open_device_code(sealer, m[c.id_hash], m[c.device_code]),
        verification_uri=m[c.verification_uri],
        device_name=m[c.device_name],
        interval=m[c.interval],
        amazon_interval=m[c.amazon_interval],
        created_at=m[c.created_at],
        expires_at=m[c.expires_at],
        last_poll_at=m[c.last_poll_at],
        amazon_polled_at=m[c.amazon_polled_at],
        ip=m[c.ip],
    )


class SqlDeviceStore:
    def __init__(self, connection: AsyncConnection, sealer: Sealer) -> None:
        self._conn = connection
        self._sealer = sealer

    # ---- device grants and hand-offs --------------------------------------------------

    async def create_grant(
        self,
        record: DeviceGrantRecord,
        *,
        user_code_hash: str,
        device_code_hash: str | None,
    ) -> bool:
        """Insert; False when the user code (or device code) is already taken."""
        g = record.grant
        try:
            # A savepoint keeps the surrounding transaction usable after a conflict.
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(device_grants).values(
                        id=record.id,
                        purpose=record.purpose,
                        device_code_hash=device_code_hash,
                        user_code_hash=user_code_hash,
                        flow_id_hash=record.flow_id_hash,
                        sealed_flow_id=record.sealed_flow_id,
                        status=g.status,
                        device_name=record.device_name,
                        interval=g.interval,
                        account_id=g.account_id,
                        ip=record.ip,
                        created_at=g.created_at,
                        expires_at=g.expires_at,
                        last_poll_at=g.last_poll_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def grant_by_device_code(self, device_code_hash: str) -> DeviceGrantRecord | None:
        return await self._grant_where(device_grants.c.device_code_hash == device_code_hash)

    async def grant_by_user_code(self, user_code_hash: str) -> DeviceGrantRecord | None:
        return await self._grant_where(device_grants.c.user_code_hash == user_code_hash)

    async def grant_by_id(self, grant_id: str) -> DeviceGrantRecord | None:
        return await self._grant_where(device_grants.c.id == grant_id)

    async def _grant_where(self, condition: ColumnElement[bool]) -> DeviceGrantRecord | None:
        row = (await self._conn.execute(select(device_grants).where(condition))).first()
        return grant_from_row(row) if row is not None else None

    async def save_grant(self, grant_id: str, *, before: DeviceGrant, after: DeviceGrant) -> bool:
        """Compare-and-set: store ``after`` only if the row still holds ``before``."""
        c = device_grants.c
        result = await self._conn.execute(
            update(device_grants)
            .where(
                c.id == grant_id,
                c.status == before.status,
                _same(c.last_poll_at, before.last_poll_at),
            )
            .values(
                status=after.status,
                interval=after.interval,
                last_poll_at=after.last_poll_at,
                account_id=after.account_id,
            )
        )
        return result.rowcount == 1

    async def delete_handoffs_for_flow(self, flow_id_hash: str) -> int:
        """A flow has at most one live hand-off code: a new one replaces the old."""
        result = await self._conn.execute(
            delete(device_grants).where(device_grants.c.flow_id_hash == flow_id_hash)
        )
        return result.rowcount

    # ---- server-assisted Amazon code pairs ------------------------------------------------

    async def create_authorization(self, auth: AmazonAuthorization) -> None:
        await self._conn.execute(
            insert(amazon_device_authorizations).values(
                id_hash=auth.id_hash,
                status=auth.status,
                user_code=auth.user_code,
                device_code=(
                    self._sealer.seal(DEVICE_CODE_SEAL, auth.device_code, aad=auth.id_hash)
                    if auth.device_code is not None
                    else None
                ),
                verification_uri=auth.verification_uri,
                device_name=auth.device_name,
                interval=auth.interval,
                amazon_interval=auth.amazon_interval,
                ip=auth.ip,
                created_at=auth.created_at,
                expires_at=auth.expires_at,
                last_poll_at=auth.last_poll_at,
                amazon_polled_at=auth.amazon_polled_at,
            )
        )

    async def get_authorization(self, id_hash: str) -> AmazonAuthorization | None:
        c = amazon_device_authorizations.c
        row = (
            await self._conn.execute(
                select(amazon_device_authorizations).where(c.id_hash == id_hash)
            )
        ).first()
        return authorization_from_row(row, self._sealer) if row is not None else None

    async def record_device_poll(
        self, auth: AmazonAuthorization, *, now: datetime, interval: int
    ) -> bool:
        """Compare-and-set the device's last poll (and its interval, raised on slow_down)."""
        c = amazon_device_authorizations.c
        result = await self._conn.execute(
            update(amazon_device_authorizations)
            .where(c.id_hash == auth.id_hash, _same(c.last_poll_at, auth.last_poll_at))
            .values(last_poll_at=now, interval=interval)
        )
        return result.rowcount == 1

    async def claim_amazon_poll(self, auth: AmazonAuthorization, *, now: datetime) -> bool:
        """Compare-and-set: True for exactly one of several workers due to ask Amazon."""
        c = amazon_device_authorizations.c
        result = await self._conn.execute(
            update(amazon_device_authorizations)
            .where(
                c.id_hash == auth.id_hash,
                c.status == "pending",
                _same(c.amazon_polled_at, auth.amazon_polled_at),
            )
            .values(amazon_polled_at=now)
        )
        return result.rowcount == 1

    async def set_amazon_interval(self, id_hash: str, amazon_interval: int) -> None:
        c = amazon_device_authorizations.c
        await self._conn.execute(
            update(amazon_device_authorizations)
            .where(c.id_hash == id_hash)
            .values(amazon_interval=amazon_interval)
        )

    async def finish_authorization(self, id_hash: str, status: AmazonAuthorizationStatus) -> bool:
        """pending -> ``status``, forgetting Amazon's device code. False if already finished."""
        c = amazon_device_authorizations.c
        result = await self._conn.execute(
            update(amazon_device_authorizations)
            .where(c.id_hash == id_hash, c.status == "pending")
            .values(status=status, device_code=None)
        )
        return result.rowcount == 1

    # ---- housekeeping ---------------------------------------------------------------------

    async def delete_expired(self, before: datetime) -> int:
        """Forget grants and code pairs that expired before ``before``."""
        grants = await self._conn.execute(
            delete(device_grants).where(device_grants.c.expires_at < before)
        )
        auths = await self._conn.execute(
            delete(amazon_device_authorizations).where(
                amazon_device_authorizations.c.expires_at < before
            )
        )
        return grants.rowcount + auths.rowcount

    async def purge_expired(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` grants and code pairs that expired before ``before``,
        whatever their status (a consumed or finished one is dead once expired)."""
        deleted = 0
        for table, key in (
            (device_grants, device_grants.c.id),
            (amazon_device_authorizations, amazon_device_authorizations.c.id_hash),
        ):
            if deleted >= limit:
                break
            ids = select(key).where(table.c.expires_at < before).limit(limit - deleted)
            result = await self._conn.execute(delete(table).where(key.in_(ids)))
            deleted += int(result.rowcount)
        return deleted
