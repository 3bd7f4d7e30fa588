"""Our device grant (flows/devices.py) without HTTP: the grant as issued, every poll
outcome (pending, slow_down, approved -> one session, denied, expired, used), the phone's
code lookup (a refusal audited and kept through the rollback; throttled per code and per
IP) and the races: two phones deciding one code, several polls taking one approval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import Account, AuditEvent, PendingFlow
from lwa_accounts.flows.context import ClientInfo, Context
from lwa_accounts.flows.devices import (
    GRANT_ID_PREFIX,
    IssuedGrant,
    TokenInvalid,
    TokenOutcome,
    authorize_device,
    decide_device,
    find_code,
    guard_device_start,
    new_grant_record,
    poll_device_token,
)
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import accounts as accounts_table
from lwa_accounts.testing import amazon_profile
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import CLIENT, START, fast_settings, make_user

OTHER_PHONE = ClientInfo(ip="203.0.113.9", user_agent="pytest")


async def audit_events(db: Database) -> list[AuditEvent]:
    async with db.transaction() as stores:
        return list(reversed(await stores.audit.list(limit=1000)))  # oldest first


async def audit_kinds(db: Database) -> list[str]:
    return [event.kind for event in await audit_events(db)]


async def issue(ctx: Context, device_name: str | None = "Living-room TV") -> IssuedGrant:
    async with ctx.transaction() as tx:
        return await authorize_device(tx, device_name=device_name)


async def poll(ctx: Context, device_code: str) -> TokenOutcome:
    async with ctx.transaction() as tx:
        return await poll_device_token(tx, device_code=device_code)


async def decide(ctx: Context, user_code: str, account: Account, *, approve: bool) -> None:
    """/activate/decide: look the code up and decide, in one transaction."""
    async with ctx.transaction() as tx:
        found = await find_code(tx, user_code)
        await decide_device(tx, found=found, account=account, approve=approve)


async def stored_grant(db: Database, issued: IssuedGrant) -> dg.DeviceGrantRecord:
    async with db.transaction() as stores:
        record = await stores.devices.grant_by_device_code(dg.code_digest(issued.device_code))
    assert record is not None
    return record


@asynccontextmanager
async def limited(ctx: Context, tmp_path: Path, **limits: str) -> AsyncIterator[Context]:
    """``ctx`` with a throttle of its own, configured with ``limits``."""
    throttle = Throttle(fast_settings(tmp_path, **limits))
    try:
        yield replace(ctx, deps=replace(ctx.deps, throttle=throttle))
    finally:
        await throttle.aclose()


# ---- issuing -------------------------------------------------------------------------------


async def test_a_grant_is_issued_under_digests_of_its_codes(ctx: Context, db: Database) -> None:
    issued = await issue(ctx, device_name="Living\x00room\u202e TV")
    assert dg.parse_user_code(issued.user_code) == issued.user_code  # canonical
    assert (issued.expires_in, issued.interval) == (600, 5)  # the settings' defaults
    assert len(issued.device_code) >= 43  # 256 random bits
    assert issued.device_code not in repr(issued)
    record = await stored_grant(db, issued)
    assert record.id.startswith(GRANT_ID_PREFIX)
    assert (record.purpose, record.device_name, record.ip) == ("device", "Livingroom TV", CLIENT.ip)
    assert record.grant == dg.DeviceGrant(
        status="pending", created_at=START, expires_at=START + timedelta(seconds=600), interval=5
    )
    async with db.transaction() as stores:
        by_user_code = await stores.devices.grant_by_user_code(dg.code_digest(issued.user_code))
        # Only digests are stored: the codes themselves find nothing.
        assert await stores.devices.grant_by_user_code(issued.user_code) is None
        assert await stores.devices.grant_by_device_code(issued.device_code) is None
    assert by_user_code is not None
    assert by_user_code.id == record.id
    [started] = await audit_events(db)
    assert (started.kind, started.detail, started.ip) == (
        "device.authorization_started",
        f"grant={record.id}",
        CLIENT.ip,
    )


async def test_device_starts_are_limited_per_ip(ctx: Context, tmp_path: Path) -> None:
    async with limited(ctx, tmp_path, device_start_limit_per_ip="2/10minutes") as strict:
        await guard_device_start(strict)
        await guard_device_start(strict)
        with pytest.raises(errors.TooManyAttempts) as caught:
            await guard_device_start(strict)
        assert caught.value.retry_after is not None
        assert caught.value.retry_after > 0
        await guard_device_start(replace(strict, client=OTHER_PHONE))  # another IP's budget


# ---- polling -------------------------------------------------------------------------------


async def test_polls_wait_slow_down_then_take_one_session(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    account = await make_user(ctx)
    issued = await issue(ctx)
    assert isinstance(await poll(ctx, issued.device_code), dg.AwaitingApproval)
    slow = await poll(ctx, issued.device_code)  # again at once
    assert slow == dg.SlowDown(issued.interval + dg.SLOW_DOWN_STEP_SECONDS)
    assert (await stored_grant(db, issued)).grant.interval == slow.interval  # stored, not kept
    clock.advance(issued.interval)  # the old pace is now too fast
    assert await poll(ctx, issued.device_code) == dg.SlowDown(slow.interval + 5)
    clock.advance(slow.interval + 5)
    assert isinstance(await poll(ctx, issued.device_code), dg.AwaitingApproval)
    await decide(ctx, dg.display_user_code(issued.user_code).lower(), account, approve=True)
    clock.advance(60)
    signed_in = await poll(ctx, issued.device_code)
    assert isinstance(signed_in, SignedIn)
    assert signed_in.account.id == account.id
    assert (signed_in.session.kind, signed_in.session.device_name) == ("device", "Living-room TV")
    clock.advance(60)
    assert isinstance(await poll(ctx, issued.device_code), TokenInvalid)  # used
    async with db.transaction() as stores:
        assert len(await stores.sessions.list_for_account(account.id)) == 1
    assert await audit_kinds(db) == [
        "account.registered",
        "email.verification_sent",  # the registration's verification mail
        "device.authorization_started",
        "device.approved",
        "session.started",
    ]


async def test_a_denied_grant_answers_denied_and_never_signs_in(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    account = await make_user(ctx)
    issued = await issue(ctx)
    await decide(ctx, issued.user_code, account, approve=False)
    for _ in range(2):
        clock.advance(issued.interval)
        assert isinstance(await poll(ctx, issued.device_code), dg.Denied)
    async with db.transaction() as stores:
        assert await stores.sessions.list_for_account(account.id) == []
    denied = [event for event in await audit_events(db) if event.kind == "device.denied"]
    assert [event.account_id for event in denied] == [account.id]


async def test_an_unanswered_grant_expires(ctx: Context, db: Database, clock: FixedClock) -> None:
    account = await make_user(ctx)
    issued = await issue(ctx)
    async with ctx.transaction() as tx:  # the phone found the code in time...
        found = await find_code(tx, issued.user_code)
    clock.advance(issued.expires_in)
    with pytest.raises(errors.DeviceCodeExpired):  # ...but decided too late
        async with ctx.transaction() as tx:
            await decide_device(tx, found=found, account=account, approve=True)
    assert isinstance(await poll(ctx, issued.device_code), dg.Expired)
    with pytest.raises(errors.InvalidUserCode):
        await decide(ctx, issued.user_code, account, approve=True)
    assert (await stored_grant(db, issued)).grant.status == "pending"
    kinds = await audit_kinds(db)
    assert "device.approved" not in kinds
    assert kinds[-1] == "device.user_code_refused"


async def test_an_approval_for_an_account_disabled_since_never_signs_in(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    account = await make_user(ctx)
    issued = await issue(ctx)
    await decide(ctx, issued.user_code, account, approve=True)
    async with db.engine.begin() as connection:
        await connection.execute(
            accounts_table.update().where(accounts_table.c.id == account.id).values(disabled=True)
        )
    clock.advance(issued.interval)
    assert isinstance(await poll(ctx, issued.device_code), dg.Denied)
    clock.advance(issued.interval)
    assert isinstance(await poll(ctx, issued.device_code), TokenInvalid)  # spent all the same
    async with db.transaction() as stores:
        assert await stores.sessions.list_for_account(account.id) == []


@pytest.mark.parametrize("device_code", ["", "x" * 257, "not-a-device-code"])
async def test_unknown_device_codes_are_invalid(
    ctx: Context, db: Database, device_code: str
) -> None:
    await issue(ctx)
    assert isinstance(await poll(ctx, device_code), TokenInvalid)
    assert await audit_kinds(db) == ["device.authorization_started"]


# ---- the phone's code lookup ----------------------------------------------------------------


async def test_a_wrong_code_undoes_the_request_but_its_audit_is_kept(
    ctx: Context, db: Database
) -> None:
    issued: list[IssuedGrant] = []

    async def start_then_mistype() -> None:
        async with ctx.transaction() as tx:
            issued.append(await authorize_device(tx, device_name=None))  # rolled back below
            await find_code(tx, "BCDF-GHJK")

    with pytest.raises(errors.InvalidUserCode):
        await start_then_mistype()
    async with db.transaction() as stores:
        digest = dg.code_digest(issued[0].device_code)
        assert await stores.devices.grant_by_device_code(digest) is None
    [refused] = await audit_events(db)
    assert (refused.kind, refused.detail, refused.ip) == (
        "device.user_code_refused",
        "unknown",
        CLIENT.ip,
    )


async def test_a_decided_code_is_no_longer_found(ctx: Context, db: Database) -> None:
    account = await make_user(ctx)
    issued = await issue(ctx)
    await decide(ctx, issued.user_code, account, approve=True)
    with pytest.raises(errors.InvalidUserCode):
        await decide(ctx, issued.user_code, account, approve=False)
    kinds = await audit_kinds(db)
    assert (kinds.count("device.approved"), kinds.count("device.denied")) == (1, 0)
    assert kinds[-1] == "device.user_code_refused"


async def test_lookups_of_one_code_are_limited_found_or_not(
    ctx: Context, db: Database, tmp_path: Path
) -> None:
    issued = await issue(ctx)
    async with limited(ctx, tmp_path, user_code_limit_per_code="2/10minutes") as strict:
        async with strict.transaction() as tx:
            await find_code(tx, issued.user_code)
        async with replace(strict, client=OTHER_PHONE).transaction() as tx:
            await find_code(tx, issued.user_code)  # the code's budget, not the IP's
        with pytest.raises(errors.TooManyAttempts):
            async with replace(strict, client=ClientInfo(ip="192.0.2.44")).transaction() as tx:
                await find_code(tx, issued.user_code)  # the right code, refused unread
    assert "device.user_code_refused" not in await audit_kinds(db)


async def test_lookups_from_one_ip_are_limited_found_or_not(ctx: Context, tmp_path: Path) -> None:
    issued = await issue(ctx)
    async with limited(ctx, tmp_path, user_code_limit_per_ip="3/10minutes") as strict:
        for guess in ("BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM"):
            with pytest.raises(errors.InvalidUserCode):
                async with strict.transaction() as tx:
                    await find_code(tx, guess)
        with pytest.raises(errors.TooManyAttempts):
            async with strict.transaction() as tx:
                await find_code(tx, issued.user_code)
        async with replace(strict, client=OTHER_PHONE).transaction() as tx:
            assert (await find_code(tx, issued.user_code)).code == issued.user_code


async def test_a_handoff_code_is_found_but_cannot_be_decided(ctx: Context, db: Database) -> None:
    account = await make_user(ctx)
    async with ctx.transaction() as tx:
        flow = await tx.pending_flows.create(pending_link(account))
        user_code, device_code, record = await new_grant_record(
            tx,
            purpose="handoff",
            ttl_seconds=600,
            interval=5,
            device_name=None,
            flow_id_hash=flow.id_hash,
            with_device_code=False,
            seal=lambda code: f"sealed:{code}",
        )
    assert device_code is None
    assert record.sealed_flow_id == f"sealed:{user_code}"  # sealed with its own code
    async with ctx.transaction() as tx:
        found = await find_code(tx, user_code)
    assert (found.record.id, found.device_name) == (record.id, "Unnamed device")
    with pytest.raises(errors.InvalidUserCode):
        async with ctx.transaction() as tx:
            await decide_device(tx, found=found, account=account, approve=True)
    async with db.transaction() as stores:
        still = await stores.devices.grant_by_id(record.id)
    assert still is not None
    assert still.grant.status == "pending"


def pending_link(account: Account) -> PendingFlow:
    """A TV's pending Amazon link step (what a hand-off code points at)."""
    return PendingFlow(
        id_hash="f" * 64,
        kind="link",
        status="pending",
        profile=amazon_profile(email=account.email),
        target_account_id=account.id,
        completed_account_id=None,
        attempts_left=3,
        can_register_instead=False,
        missing=(),
        session_kind="device",
        device_name="TV",
        binding_hash=None,
        created_at=START,
        expires_at=START + timedelta(minutes=10),
    )


# ---- races -----------------------------------------------------------------------------------


@pytest.mark.parametrize("first_approves", [True, False])
async def test_two_phones_decide_one_code_the_first_decision_stands(
    ctx: Context, db: Database, clock: FixedClock, first_approves: bool
) -> None:
    ada = await make_user(ctx)
    mallory = await make_user(ctx, username="mallory", email="mallory@example.com")
    other_phone = replace(ctx, client=OTHER_PHONE)
    issued = await issue(ctx)
    # Both phones looked the code up before either decided.
    async with ctx.transaction() as tx:
        ada_found = await find_code(tx, issued.user_code)
    async with other_phone.transaction() as tx:
        mallory_found = await find_code(tx, issued.user_code)
    async with ctx.transaction() as tx:
        await decide_device(tx, found=ada_found, account=ada, approve=first_approves)
    with pytest.raises(errors.DeviceCodeExpired):
        async with other_phone.transaction() as tx:
            await decide_device(
                tx, found=mallory_found, account=mallory, approve=not first_approves
            )
    clock.advance(issued.interval)
    outcome = await poll(ctx, issued.device_code)
    if first_approves:
        assert isinstance(outcome, SignedIn)
        assert outcome.account.id == ada.id
    else:
        assert isinstance(outcome, dg.Denied)
    decided = ("device.approved", "device.denied")
    decisions = [e for e in await audit_events(db) if e.kind in decided]
    assert [(e.kind, e.account_id) for e in decisions] == [
        ("device.approved" if first_approves else "device.denied", ada.id)
    ]


async def test_parallel_decisions_apply_once(ctx: Context, db: Database, clock: FixedClock) -> None:
    ada = await make_user(ctx)
    mallory = await make_user(ctx, username="mallory", email="mallory@example.com")
    issued = await issue(ctx)
    results = await asyncio.gather(
        decide(ctx, issued.user_code, ada, approve=True),
        decide(replace(ctx, client=OTHER_PHONE), issued.user_code, mallory, approve=False),
        return_exceptions=True,
    )
    applied = [result is None for result in results]
    assert applied.count(True) == 1, results
    assert all(
        isinstance(result, errors.InvalidUserCode | errors.DeviceCodeExpired)
        for result in results
        if result is not None
    )
    clock.advance(issued.interval)
    outcome = await poll(ctx, issued.device_code)
    if applied[0]:
        assert isinstance(outcome, SignedIn)
        assert outcome.account.id == ada.id
    else:
        assert isinstance(outcome, dg.Denied)
    kinds = await audit_kinds(db)
    assert kinds.count("device.approved") + kinds.count("device.denied") == 1


async def test_parallel_polls_take_one_session(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    account = await make_user(ctx)
    issued = await issue(ctx)
    await decide(ctx, issued.user_code, account, approve=True)
    clock.advance(issued.interval)
    outcomes = await asyncio.gather(*(poll(ctx, issued.device_code) for _ in range(8)))
    assert sum(isinstance(outcome, SignedIn) for outcome in outcomes) == 1
    assert all(isinstance(outcome, SignedIn | TokenInvalid | dg.SlowDown) for outcome in outcomes)
    async with db.transaction() as stores:
        assert len(await stores.sessions.list_for_account(account.id)) == 1


async def test_a_poll_that_loses_the_race_is_told_to_slow_down(
    ctx: Context, db: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await make_user(ctx)
    issued = await issue(ctx)
    await decide(ctx, issued.user_code, account, approve=True)
    clock.advance(issued.interval)
    async with ctx.transaction() as tx:
        read = tx.devices.grant_by_device_code

        async def read_then_lose(digest: str) -> dg.DeviceGrantRecord | None:
            record = await read(digest)
            assert record is not None
            # Another poll of the same code takes the approval between this read and its write.
            taken = replace(record.grant, status="consumed", last_poll_at=clock.now())
            assert await tx.devices.save_grant(record.id, before=record.grant, after=taken)
            return record

        monkeypatch.setattr(tx.devices, "grant_by_device_code", read_then_lose)
        outcome = await poll_device_token(tx, device_code=issued.device_code)
    assert outcome == dg.SlowDown(issued.interval + dg.SLOW_DOWN_STEP_SECONDS)
    async with db.transaction() as stores:  # the loser started no session
        assert await stores.sessions.list_for_account(account.id) == []
