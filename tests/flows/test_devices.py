"""The device flows on their own (flows/devices.py, tv_amazon.py, tv_handoff.py), without
HTTP: our device grant, the phone's code lookup, server-assisted Amazon code pairs and
the hand-off of a pending Amazon flow."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import CodePair, OAuthErrorReply
from lwa_accounts.flows import amazon, tv_amazon
from lwa_accounts.flows.context import Context
from lwa_accounts.flows.devices import (
    TokenInvalid,
    authorize_device,
    decide_device,
    find_code,
    poll_device_token,
)
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.flows.tv_handoff import handoff_flow, offer_handoff
from lwa_accounts.store.db import Database
from lwa_accounts.testing import amazon_profile
from tests.flows.conftest import make_user


async def audit_kinds(db: Database) -> list[str]:
    async with db.transaction() as stores:
        return [event.kind for event in await stores.audit.list(limit=1000)]


async def test_device_grant_from_code_to_one_session(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    account = await make_user(ctx)
    async with ctx.transaction() as tx:
        issued = await authorize_device(tx, device_name="Living\x00room TV")
    clock.advance(issued.interval)
    async with ctx.transaction() as tx:
        assert isinstance(
            await poll_device_token(tx, device_code=issued.device_code), dg.AwaitingApproval
        )
    async with ctx.transaction() as tx:  # too soon again: slow down, interval grows
        slow = await poll_device_token(tx, device_code=issued.device_code)
    assert isinstance(slow, dg.SlowDown)
    assert slow.interval > issued.interval
    async with ctx.transaction() as tx:
        found = await find_code(tx, dg.display_user_code(issued.user_code).lower())
        assert found.device_name == "Livingroom TV"
        await decide_device(tx, found=found, account=account, approve=True)
    clock.advance(slow.interval)
    async with ctx.transaction() as tx:
        signed_in = await poll_device_token(tx, device_code=issued.device_code)
    assert isinstance(signed_in, SignedIn)
    assert (signed_in.account.id, signed_in.session.kind) == (account.id, "device")
    clock.advance(slow.interval)
    async with ctx.transaction() as tx:  # single use: the code is spent
        assert isinstance(await poll_device_token(tx, device_code=issued.device_code), TokenInvalid)
    kinds = await audit_kinds(db)
    assert {"device.authorization_started", "device.approved", "session.started"} <= set(kinds)


async def test_a_denied_grant_never_signs_in(ctx: Context, clock: FixedClock) -> None:
    account = await make_user(ctx)
    async with ctx.transaction() as tx:
        issued = await authorize_device(tx, device_name=None)
        found = await find_code(tx, issued.user_code)
        await decide_device(tx, found=found, account=account, approve=False)
    clock.advance(issued.interval)
    async with ctx.transaction() as tx:
        assert isinstance(await poll_device_token(tx, device_code=issued.device_code), dg.Denied)
    with pytest.raises(errors.DeviceCodeExpired):  # decided once: no second decision
        async with ctx.transaction() as tx:
            await decide_device(tx, found=found, account=account, approve=True)


@pytest.mark.parametrize("typed", ["", "BCDF-GHJK", "not a code at all", "A" * 500])
async def test_a_wrong_code_is_refused_and_its_audit_kept(
    ctx: Context, db: Database, typed: str
) -> None:
    with pytest.raises(errors.InvalidUserCode):
        async with ctx.transaction() as tx:
            await find_code(tx, typed)
    assert await audit_kinds(db) == ["device.user_code_refused"]


PAIR = CodePair(
    user_code="ABC123",
    device_code="amazon-device-code",
    verification_uri="https://amazon.example/us/code",
    expires_in=600,
    interval=5,
)


async def test_amazon_code_pair_polling_rules(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    async with ctx.transaction() as tx:
        started = await tv_amazon.register_authorization(tx, PAIR, device_name="TV")
    clock.advance(started.authorization.interval)
    async with ctx.transaction() as tx:
        step = await tv_amazon.begin_poll(tx, started.id)
    assert isinstance(step, tv_amazon.AskAmazon)
    # Polled again at once: 429 slow_down, and the slowed pace survives the refusal.
    with pytest.raises(errors.SlowDown) as slow:
        async with ctx.transaction() as tx:
            await tv_amazon.begin_poll(tx, started.id)
    async with db.transaction() as stores:
        kept = await stores.devices.get_authorization(started.authorization.id_hash)
    assert kept is not None
    assert kept.interval == slow.value.extra["interval"] > started.authorization.interval
    # Amazon says the pair expired: 410, and the pair stays expired after the rollback.
    with pytest.raises(errors.DeviceCodeExpired):
        async with ctx.transaction() as tx:
            await tv_amazon.record_reply(
                tx, step.authorization, OAuthErrorReply(400, "expired_token")
            )
    async with db.transaction() as stores:
        ended = await stores.devices.get_authorization(started.authorization.id_hash)
    assert ended is not None
    assert ended.status == "expired"
    clock.advance(60)
    with pytest.raises(errors.DeviceCodeExpired):
        async with ctx.transaction() as tx:
            await tv_amazon.begin_poll(tx, started.id)
    with pytest.raises(errors.NotFound):
        async with ctx.transaction() as tx:
            await tv_amazon.begin_poll(tx, "unknown")


async def test_amazon_denial_is_kept_and_answered_403_after(
    ctx: Context, clock: FixedClock
) -> None:
    async with ctx.transaction() as tx:
        started = await tv_amazon.register_authorization(tx, PAIR, device_name=None)
    with pytest.raises(errors.AccessDenied):
        async with ctx.transaction() as tx:
            await tv_amazon.record_reply(
                tx, started.authorization, OAuthErrorReply(400, "access_denied")
            )
    clock.advance(60)
    with pytest.raises(errors.AccessDenied):
        async with ctx.transaction() as tx:
            await tv_amazon.begin_poll(tx, started.id)


async def test_an_amazon_sign_in_that_needs_a_password_is_handed_to_the_phone(
    ctx: Context, clock: FixedClock
) -> None:
    await make_user(ctx, verified=True)  # holds ada@example.com, verified
    profile = amazon_profile(email="ada@example.com")
    async with ctx.transaction() as tx:
        started = await tv_amazon.register_authorization(tx, PAIR, device_name="TV")
        outcome = await tv_amazon.finish_sign_in(tx, started.authorization, profile)
    assert isinstance(outcome, tv_amazon.NeedsPhone)
    assert isinstance(outcome.outcome, amazon.LinkRequired)
    offer = outcome.handoff
    assert offer.url.endswith("code=" + offer.display_code)
    async with ctx.transaction() as tx:
        found = await find_code(tx, offer.display_code)
        flow_id, flow = await handoff_flow(tx, found)
    assert flow_id == outcome.outcome.flow_id
    assert flow.profile.user_id == profile.user_id
    # A new offer replaces the old code.
    async with ctx.transaction() as tx:
        again = await offer_handoff(tx, flow_id=flow_id, flow=flow)
    assert again.code != offer.code
    with pytest.raises(errors.InvalidUserCode):
        async with ctx.transaction() as tx:
            await find_code(tx, offer.display_code)
    # The pair is spent whatever the sign-in answered: finishing twice is refused.
    with pytest.raises(errors.DeviceCodeExpired):
        async with ctx.transaction() as tx:
            await tv_amazon.finish_sign_in(tx, started.authorization, replace(profile))
