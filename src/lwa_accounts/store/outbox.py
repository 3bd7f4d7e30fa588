"""SQL implementation of ``interfaces.Outbox``: e-mail queued in the caller's transaction.

The body (text and HTML, which may carry a one-time link) is sealed at rest
(``sealing.py``, purpose ``outbox-body``, bound to the recipient and kind), so a copy of
the database does not hand out reset links.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.core.models import OutgoingMail
from lwa_accounts.sealing import Sealer
from lwa_accounts.store import outbox_queue
from lwa_accounts.store.schema import outbox

_INSERT = insert(outbox).returning(outbox.c.id)


def body_aad(kind: str, to: str) -> str:
    """What a sealed body is bound to: another row's recipient or kind does not open it."""
    return f"{kind}\n{to}"


def seal_body(sealer: Sealer, mail: OutgoingMail) -> str:
    plain = json.dumps({"text": mail.text, "html": mail.html}, ensure_ascii=False)
    return sealer.seal("outbox-body", plain, body_aad(mail.kind, mail.to))


def open_body(sealer: Sealer, kind: str, to: str, sealed: str) -> tuple[str, str]:
    """(text, html) of a sealed body; ``SealBroken`` when it is not intact."""
    plain = json.loads(sealer.open("outbox-body", sealed, body_aad(kind, to)))
    return str(plain["text"]), str(plain["html"])


class SqlOutbox:
    def __init__(self, connection: AsyncConnection, sealer: Sealer) -> None:
        self._conn = connection
        self._sealer = sealer
        self.queued = 0  # messages queued in this transaction (Database wakes the worker)

    async def enqueue(self, mail: OutgoingMail, *, now: datetime) -> int:
        result = await self._conn.execute(
            _INSERT,
            {
                "kind": mail.kind,
                "account_id": mail.account_id,
                "to_address": mail.to,
                "subject": mail.subject,
                "sealed_body": seal_body(self._sealer, mail),
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
            },
        )
        self.queued += 1
        return int(result.scalar_one())

    async def purge_settled(
        self, *, sent_before: datetime, failed_before: datetime, limit: int
    ) -> int:
        return await outbox_queue.purge_settled(
            self._conn, sent_before=sent_before, failed_before=failed_before, limit=limit
        )
