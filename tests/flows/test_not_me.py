"""The "This wasn't me" action (flows/not_me.py) without HTTP: what it ends, unlinks and
voids, what it refuses and why, and that opening the link changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from lwa_accounts import signing
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account
from lwa_accounts.errors import EmailLinkExpired, EmailLinkInvalid, EmailLinkUsed
from lwa_accounts.flows import email_codes, not_me
from lwa_accounts.flows.accounts import sign_in_with_password
from lwa_accounts.flows.context import Context
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.store.db import Database
from lwa_accounts.testing.factories import make_link
from tests.flows.conftest import PASSWORD, make_user


async def sign_in(ctx: Context, login: str, kind: str = "browser") -> SignedIn:
    async with ctx.transaction() as tx:
        return await sign_in_with_password(
            tx,
            login=login,
            password=PASSWORD,
            kind=kind,  # type: ignore[arg-type]
            device_name="TV" if kind == "device" else None,
        )


async def linked_user(ctx: Context, username: str) -> Account:
    account = await make_user(ctx, username=username, email=f"{username}@example.com")
    async with ctx.transaction() as tx:
        await make_link(tx.identities, account)
    return account


def token_for(ctx: Context, account: Account, notice: str = "new_device") -> str:
    return not_me.token(ctx.settings, account_id=account.id, notice=notice, now=ctx.now())


async def live_sessions(ctx: Context, account: Account) -> int:
    async with ctx.transaction() as tx:
        return len(await tx.sessions.list_for_account(account.id))


async def is_linked(ctx: Context, account: Account) -> bool:
    async with ctx.transaction() as tx:
        return await tx.identities.get_for_account(account.id) is not None


async def audit(db: Database, kind: str) -> list[str | None]:
    async with db.transaction() as stores:
        return [e.detail for e in await stores.audit.list(limit=1000) if e.kind == kind]


async def report(ctx: Context, value: object) -> not_me.LockedDown:
    async with ctx.transaction() as tx:
        return await not_me.report(tx, value)


async def test_report_ends_every_session_unlinks_and_voids_codes(
    db: Database, ctx: Context
) -> None:
    ada = await linked_user(ctx, "ada")
    for kind in ("browser", "device", "device"):
        await sign_in(ctx, "ada", kind)
    async with ctx.transaction() as tx:
        issued = await email_codes.issue(tx, purpose="verify_email", account=ada, email=ada.email)  # type: ignore[arg-type]
    done = await report(ctx, token_for(ctx, ada, "amazon_linked"))
    assert (done.ended_sessions, done.unlinked_amazon, done.voided_codes) == (3, True, 1)
    assert done.has_password
    assert await live_sessions(ctx, ada) == 0
    assert not await is_linked(ctx, ada)
    with pytest.raises(EmailLinkUsed):
        async with ctx.transaction() as tx:
            await email_codes.redeem_link(tx, "verify_email", issued.link_token)
    [detail] = await audit(db, "notice.not_me")
    assert detail is not None
    assert "notice=amazon_linked" in detail
    assert "ended_sessions=3" in detail
    assert "unlinked_amazon=yes" in detail
    assert "voided_codes=1" in detail


async def test_opening_the_link_changes_nothing(db: Database, ctx: Context) -> None:
    ada = await linked_user(ctx, "ada")
    await sign_in(ctx, "ada", "device")
    before = await audit(db, "session.started")
    pending = await not_me.peek(ctx, token_for(ctx, ada))
    assert (pending.username, pending.claim.notice) == ("ada", "new_device")
    assert await live_sessions(ctx, ada) == 1
    assert await is_linked(ctx, ada)
    assert await audit(db, "session.started") == before
    assert await audit(db, "notice.not_me") == []


async def test_a_token_acts_only_on_its_own_account(ctx: Context) -> None:
    ada, grace = await linked_user(ctx, "ada"), await linked_user(ctx, "grace")
    await sign_in(ctx, "grace", "device")
    await report(ctx, token_for(ctx, ada))
    assert await live_sessions(ctx, grace) == 1
    assert await is_linked(ctx, grace)


@pytest.mark.parametrize(
    "alter",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature altered
        lambda t: t[: len(t) // 2],  # cut short by a mail client
        lambda t: "",
        lambda t: t + "é",
        lambda t: None,
    ],
)
async def test_an_altered_token_is_invalid_and_the_refusal_is_kept(
    db: Database, ctx: Context, alter: object
) -> None:
    ada = await linked_user(ctx, "ada")
    value = alter(token_for(ctx, ada))  # type: ignore[operator]
    with pytest.raises(EmailLinkInvalid):
        await not_me.peek(ctx, value)
    with pytest.raises(EmailLinkInvalid):
        await report(ctx, value)
    assert await is_linked(ctx, ada)
    assert await audit(db, "notice.not_me_refused") == ["reason=email_link_invalid"]


async def test_values_signed_for_another_purpose_or_shape_are_invalid(ctx: Context) -> None:
    ada = await linked_user(ctx, "ada")
    now = ctx.now()
    t = int(now.timestamp())
    shapes: list[tuple[str, dict[str, object]]] = [
        ("known-browser", {"a": ada.id, "n": "x", "t": t}),  # another purpose, same shape
        ("csrf", {"a": ada.id, "n": "x", "t": t}),
        (not_me.PURPOSE, {"a": ada.id}),
        (not_me.PURPOSE, {"a": ada.id, "n": "x", "t": True}),
        (not_me.PURPOSE, {"a": ada.id, "n": "x", "t": "now"}),
        (not_me.PURPOSE, {"a": 7, "n": "x", "t": t}),
        (not_me.PURPOSE, {"a": "x" * 129, "n": "x", "t": t}),
        (not_me.PURPOSE, {"a": "acc_gone", "n": "x", "t": t}),  # no such account
    ]
    others = [signing.dumps(ctx.settings, purpose, data, now=now) for purpose, data in shapes]
    for value in others:
        with pytest.raises(EmailLinkInvalid):
            await report(ctx, value)
    assert await is_linked(ctx, ada)


async def test_a_token_expires_after_seven_days_and_one_from_the_future_is_invalid(
    ctx: Context, clock: FixedClock
) -> None:
    ada = await linked_user(ctx, "ada")
    value = token_for(ctx, ada)
    future = not_me.token(
        ctx.settings, account_id=ada.id, notice="new_device", now=ctx.now() + timedelta(hours=1)
    )
    with pytest.raises(EmailLinkInvalid):
        await report(ctx, future)
    clock.advance(int(not_me.MAX_AGE.total_seconds()))
    assert (await not_me.peek(ctx, value)).username == "ada"  # on the 7th day: still good
    clock.advance(1)
    with pytest.raises(EmailLinkExpired):
        await not_me.peek(ctx, value)
    with pytest.raises(EmailLinkExpired):
        await report(ctx, value)
    assert await is_linked(ctx, ada)


async def test_parallel_reports_are_harmless(db: Database, ctx: Context) -> None:
    ada = await linked_user(ctx, "ada")
    for _ in range(4):
        await sign_in(ctx, "ada", "device")
    value = token_for(ctx, ada)
    results = await asyncio.gather(*(report(ctx, value) for _ in range(8)))
    assert sum(r.ended_sessions for r in results) == 4
    assert sum(r.unlinked_amazon for r in results) == 1
    assert await live_sessions(ctx, ada) == 0
    assert len(await audit(db, "notice.not_me")) == 8
