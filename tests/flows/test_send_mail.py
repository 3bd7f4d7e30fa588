"""Mail is queued in the transaction that decides to send it: a rollback queues nothing,
and the body is sealed at rest (it may hold a one-time link)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lwa_accounts.flows.context import Context
from lwa_accounts.mail.render import kinds, render_mail
from lwa_accounts.sealing import SealBroken
from lwa_accounts.store.db import Database
from lwa_accounts.store.outbox import open_body
from lwa_accounts.store.schema import outbox


async def _rows(db: Database) -> list[dict[str, object]]:
    async with db.engine.connect() as connection:
        result = await connection.execute(select(outbox).order_by(outbox.c.id))
        return [dict(row._mapping) for row in result]


async def test_committed_mail_is_queued_sealed_and_due_now(ctx: Context, db: Database) -> None:
    mail = render_mail("test", to="ada@example.com", settings=ctx.settings, account_id="acc1")
    async with ctx.transaction() as tx:
        await tx.send_mail(mail)
    [row] = await _rows(db)
    assert (row["kind"], row["to_address"], row["account_id"]) == ("test", mail.to, "acc1")
    assert row["subject"] == "A test message from lwa-accounts"
    assert row["next_attempt_at"] == ctx.now()
    assert row["attempts"] == 0
    assert row["sent_at"] is None
    assert row["claimed_until"] is None
    sealed = str(row["sealed_body"])
    assert "outgoing mail works" not in sealed
    assert open_body(db.sealer, "test", mail.to, sealed) == (mail.text, mail.html)
    # Bound to its recipient: copied onto another row it does not open.
    with pytest.raises(SealBroken):
        open_body(db.sealer, "test", "mallory@example.com", sealed)


async def test_a_rolled_back_transaction_sends_nothing(ctx: Context, db: Database) -> None:
    mail = render_mail("test", to="ada@example.com", settings=ctx.settings)

    async def refused_after_queueing() -> None:
        async with ctx.transaction() as tx:
            await tx.send_mail(mail)
            raise RuntimeError("refused after queueing")

    with pytest.raises(RuntimeError):
        await refused_after_queueing()
    assert await _rows(db) == []


def test_rendering_escapes_html_but_not_text(ctx: Context) -> None:
    to = 'a<b>"x"\r\nBcc: evil@example.com'
    mail = render_mail("test", to=to, settings=ctx.settings)
    assert "a&lt;b&gt;" in mail.html
    assert "<b>" not in mail.html
    assert to in mail.text
    assert "test" in kinds()
    assert {"verify_email", "notice_email_changed"} <= set(kinds())  # issue 13
