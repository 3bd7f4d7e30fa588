"""Server-assisted Amazon code pairs for a TV (flows/tv_amazon.py), without HTTP: what is
stored, when Amazon may be asked, what each of Amazon's answers does to the pair (a pair
marked over stays over through the refusal's rollback), and the sign-in at the end."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import CodePair, OAuthErrorReply, TokenSet
from lwa_accounts.flows import amazon, tv_amazon
from lwa_accounts.flows.context import Context
from lwa_accounts.store.db import Database
from lwa_accounts.testing import amazon_profile

# Amazon paces its own polls slower than the TV polls us.
PAIR = CodePair(
    user_code="ABC123",
    device_code="amazon-device-code",
    verification_uri="https://amazon.example/us/code",
    expires_in=600,
    interval=20,
)


async def stored(db: Database, started: tv_amazon.StartedAuthorization) -> dg.AmazonAuthorization:
    async with db.transaction() as stores:
        auth = await stores.devices.get_authorization(started.authorization.id_hash)
    assert auth is not None
    return auth


async def start(ctx: Context, pair: CodePair = PAIR) -> tv_amazon.StartedAuthorization:
    async with ctx.transaction() as tx:
        return await tv_amazon.register_authorization(tx, pair, device_name="Den\x00 TV")


async def poll(ctx: Context, started: tv_amazon.StartedAuthorization) -> object:
    async with ctx.transaction() as tx:
        return await tv_amazon.begin_poll(tx, started.id)


async def reply(
    ctx: Context, auth: dg.AmazonAuthorization, answer: TokenSet | OAuthErrorReply
) -> tv_amazon.StillPending | tv_amazon.TokensReady:
    async with ctx.transaction() as tx:
        return await tv_amazon.record_reply(tx, auth, answer)


async def test_the_device_holds_a_random_id_and_amazons_code_stays_here(
    ctx: Context, db: Database
) -> None:
    started = await start(ctx)
    assert started.id not in repr(started)
    auth = await stored(db, started)
    assert auth.id_hash == dg.code_digest(started.id) != started.id
    assert (auth.status, auth.user_code, auth.device_code) == (
        "pending",
        "ABC123",
        PAIR.device_code,
    )
    assert auth.device_name == "Den TV"
    assert (auth.interval, auth.amazon_interval) == (ctx.settings.device_poll_interval_seconds, 20)
    async with db.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT * FROM amazon_device_authorizations"))).all()
    assert PAIR.device_code not in repr(raw)  # sealed at rest
    async with db.transaction() as stores:
        kinds = [event.kind for event in await stores.audit.list()]
    assert kinds == ["amazon.device_authorization_started"]


async def test_an_overlong_device_code_is_refused_and_nothing_stored(
    ctx: Context, db: Database
) -> None:
    long_pair = CodePair(
        user_code="ABC123",
        device_code="x" * (tv_amazon.DEVICE_CODE_MAX + 1),
        verification_uri=PAIR.verification_uri,
        expires_in=600,
        interval=5,
    )
    with pytest.raises(errors.AmazonProtocolError):
        await start(ctx, long_pair)
    async with db.engine.connect() as conn:
        count = await conn.execute(text("SELECT count(*) FROM amazon_device_authorizations"))
        assert count.scalar() == 0


async def test_amazon_is_asked_at_most_once_per_its_interval(
    ctx: Context, clock: FixedClock
) -> None:
    started = await start(ctx)
    assert isinstance(await poll(ctx, started), tv_amazon.AskAmazon)
    clock.advance(started.authorization.interval)
    # The TV's pace is fine, but Amazon was asked 5 s ago: the cached "pending" stands.
    assert await poll(ctx, started) == tv_amazon.StillPending(started.authorization.interval)
    clock.advance(PAIR.interval)
    assert isinstance(await poll(ctx, started), tv_amazon.AskAmazon)


async def test_amazons_answers_pending_slow_down_and_tokens(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    started = await start(ctx)
    ask = await poll(ctx, started)
    assert isinstance(ask, tv_amazon.AskAmazon)
    pending = OAuthErrorReply(400, "authorization_pending")
    assert isinstance(await reply(ctx, ask.authorization, pending), tv_amazon.StillPending)
    slowed = await reply(ctx, ask.authorization, OAuthErrorReply(400, "slow_down"))
    assert isinstance(slowed, tv_amazon.StillPending)
    assert (await stored(db, started)).amazon_interval == 2 * PAIR.interval  # our pace to Amazon
    tokens = TokenSet(access_token="Atza|token", token_type="bearer", expires_in=3600)
    ready = await reply(ctx, ask.authorization, tokens)
    assert ready == tv_amazon.TokensReady("Atza|token")
    assert "Atza" not in repr(ready)
    assert (await stored(db, started)).status == "pending"  # spent only by finish_sign_in


# invalid_client, unauthorized_client: our configuration is wrong; nothing to retry.
@pytest.mark.parametrize("answer", ["invalid_client", "unauthorized_client", "server_error"])
async def test_any_other_answer_ends_the_pair_through_the_refusal(
    ctx: Context, db: Database, clock: FixedClock, answer: str
) -> None:
    started = await start(ctx)
    with pytest.raises(errors.AmazonProtocolError) as refused:
        await reply(ctx, started.authorization, OAuthErrorReply(400, answer))
    assert refused.value.status == 502
    assert (await stored(db, started)).status == "expired"
    clock.advance(60)
    with pytest.raises(errors.DeviceCodeExpired):
        await poll(ctx, started)


async def test_a_pair_past_its_life_is_expired_for_good(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    started = await start(ctx)
    clock.advance(PAIR.expires_in)
    with pytest.raises(errors.DeviceCodeExpired):
        await poll(ctx, started)
    assert (await stored(db, started)).status == "expired"  # kept through the rollback


async def test_an_unverifiable_token_abandons_the_pair(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    started = await start(ctx)
    async with ctx.transaction() as tx:
        await tv_amazon.abandon(tx, started.authorization)
    assert (await stored(db, started)).status == "expired"
    clock.advance(60)
    with pytest.raises(errors.DeviceCodeExpired):
        await poll(ctx, started)


async def test_a_linked_amazon_user_signs_the_tv_in_and_the_pair_is_spent(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    profile = amazon_profile(email="ada@example.com")
    started = await start(ctx)
    async with ctx.transaction() as tx:
        first = await tv_amazon.finish_sign_in(tx, started.authorization, profile)
    assert isinstance(first, amazon.SignedInWithAmazon)
    assert first.created
    session = first.signed_in.session
    assert (session.kind, session.device_name) == ("device", "Den TV")
    assert (await stored(db, started)).status == "done"
    clock.advance(60)
    with pytest.raises(errors.DeviceCodeExpired):
        await poll(ctx, started)
    # A returning user on another TV: the same account.
    again = await start(ctx)
    async with ctx.transaction() as tx:
        second = await tv_amazon.finish_sign_in(tx, again.authorization, profile)
    assert isinstance(second, amazon.SignedInWithAmazon)
    assert second.signed_in.account.id == first.signed_in.account.id
    assert not second.created


async def test_a_refused_sign_in_still_spends_the_pair(ctx: Context, db: Database) -> None:
    profile = amazon_profile(email="ada@example.com")
    async with ctx.transaction() as tx:
        created = await amazon.sign_in_with_profile(
            tx, profile, kind="device", device_name=None, starter=amazon.Device()
        )
    assert isinstance(created, amazon.SignedInWithAmazon)
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE accounts SET disabled = true WHERE id = :id"),
            {"id": created.signed_in.account.id},
        )
    started = await start(ctx)
    with pytest.raises(errors.AccountDisabled):
        async with ctx.transaction() as tx:
            await tv_amazon.finish_sign_in(tx, started.authorization, profile)
    assert (await stored(db, started)).status == "done"  # kept: the pair does not revive
    async with db.transaction() as stores:
        refused = [e.detail for e in await stores.audit.list() if e.kind == "amazon.refused"]
    assert refused == ["reason=account_disabled"]
