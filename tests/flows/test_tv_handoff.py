"""The hand-off of a TV's pending Amazon flow to a phone (flows/tv_handoff.py), without
HTTP: the code leads to the flow, the phone must prove the TV's Amazon user before the
password step (security.md item 14b), the flow completes for the TV, which collects its
session once; every refusal is audited and leaves the flow as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import AmazonProfile, PendingFlow
from lwa_accounts.flows import amazon, tv_handoff
from lwa_accounts.flows.amazon import FlowCompleted, FlowFinished, RegistrationForm
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.devices import FoundCode, authorize_device, find_code
from lwa_accounts.flows.tv_handoff import AmazonProof, HandOffOffer
from lwa_accounts.store.db import Database
from lwa_accounts.testing import amazon_profile
from tests.flows.conftest import PASSWORD, CountingHasher, make_user

TV_USER = amazon_profile(email="ada@example.com")


async def kept_events(db: Database, kind: str) -> list[str | None]:
    async with db.transaction() as stores:
        return [e.detail for e in await stores.audit.list(limit=1000) if e.kind == kind]


async def tv_flow(
    ctx: Context, profile: AmazonProfile = TV_USER
) -> tuple[amazon.LinkRequired | amazon.RegistrationRequired, HandOffOffer]:
    """A TV's Amazon sign-in that needs the phone, and its hand-off offer."""
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx, profile, kind="device", device_name="Living room TV", starter=amazon.Device()
        )
        assert isinstance(outcome, amazon.LinkRequired | amazon.RegistrationRequired)
        offer = await tv_handoff.offer_handoff(tx, flow_id=outcome.flow_id, flow=outcome.flow)
    return outcome, offer


async def typed(ctx: Context, offer: HandOffOffer) -> FoundCode:
    async with ctx.transaction() as tx:
        return await find_code(tx, offer.display_code)


async def prove(ctx: Context, found: FoundCode, profile: AmazonProfile = TV_USER) -> AmazonProof:
    async with ctx.transaction() as tx:
        _, flow = await tv_handoff.handoff_flow(tx, found)
        return tv_handoff.prove_amazon(tx, found, flow, profile)


async def link_on_phone(
    ctx: Context, found: FoundCode, proof: AmazonProof | None, password: str = PASSWORD
) -> FlowFinished:
    """What /activate/link runs: the proven begin, argon2 outside, finish and close."""

    async def begin(tx: Tx) -> amazon.LinkAttempt:
        return await tv_handoff.begin_handoff_link(tx, found, proof=proof)

    async def close(tx: Tx, _: FlowFinished) -> None:
        await tv_handoff.close_handoff(tx, found)

    return await amazon.link_with_password(ctx, begin, password, after=close)


async def attempts_left(db: Database, id_hash: str) -> int:
    async with db.transaction() as stores:
        flow = await stores.pending_flows.get(id_hash)
    assert flow is not None
    return flow.attempts_left


async def test_the_phone_proves_the_amazon_user_links_and_the_tv_collects_once(
    ctx: Context, db: Database
) -> None:
    local = await make_user(ctx, verified=True)
    outcome, offer = await tv_flow(ctx)
    assert isinstance(outcome, amazon.LinkRequired)
    assert offer.url == f"{ctx.settings.public_url.rstrip('/')}/activate?code={offer.display_code}"
    assert offer.expires_at <= outcome.flow.expires_at  # never outlives the flow
    found = await typed(ctx, offer)
    async with ctx.transaction() as tx:
        flow_id, flow = await tv_handoff.handoff_flow(tx, found)
    assert (flow_id, flow.id_hash) == (outcome.flow_id, outcome.flow.id_hash)
    proof = await prove(ctx, found)
    assert TV_USER.user_id not in repr(proof)  # a digest, never the id itself
    assert await kept_events(db, "amazon.handoff_proven") == [f"grant={found.record.id}"]
    async with ctx.transaction() as tx:  # the TV polls: still pending
        assert isinstance(await amazon.collect_completed_flow(tx, outcome.flow_id), PendingFlow)
    done = await link_on_phone(ctx, found, proof)
    assert isinstance(done, FlowCompleted)  # for the TV: the phone gets no session
    assert done.account.id == local.id
    async with ctx.transaction() as tx:
        collected = await amazon.collect_completed_flow(tx, outcome.flow_id)
    assert isinstance(collected, amazon.SignedInWithAmazon)
    assert (collected.signed_in.account.id, collected.signed_in.session.kind) == (
        local.id,
        "device",
    )
    assert collected.signed_in.session.device_name == "Living room TV"
    with pytest.raises(errors.FlowExpired):  # collected once
        async with ctx.transaction() as tx:
            await amazon.collect_completed_flow(tx, outcome.flow_id)
    with pytest.raises(errors.InvalidUserCode):  # the hand-off code is spent
        await typed(ctx, offer)


async def test_another_amazon_user_is_refused_audited_with_their_id_and_changes_nothing(
    ctx: Context, db: Database
) -> None:
    await make_user(ctx, verified=True)
    outcome, offer = await tv_flow(ctx)
    found = await typed(ctx, offer)
    attacker = amazon_profile(email="ada@example.com")
    with pytest.raises(errors.AmazonUserMismatch):
        await prove(ctx, found, attacker)
    assert await kept_events(db, "amazon.refused") == [
        f"reason=amazon_user_mismatch grant={found.record.id}"
    ]
    async with db.transaction() as stores:
        refused = [e for e in await stores.audit.list(limit=100) if e.kind == "amazon.refused"]
        flow = await stores.pending_flows.get(outcome.flow.id_hash)
    assert refused[0].amazon_user_id == attacker.user_id
    assert flow is not None
    assert (flow.status, flow.attempts_left) == ("pending", outcome.flow.attempts_left)


async def test_the_password_step_needs_this_handoffs_proof_before_argon2(
    ctx: Context, db: Database, hasher: CountingHasher
) -> None:
    await make_user(ctx, verified=True)
    outcome, offer = await tv_flow(ctx)
    found = await typed(ctx, offer)
    proof = await prove(ctx, found)
    forged = [
        None,
        replace(proof, grant_id="dgr_another"),
        replace(proof, flow_id_hash="0" * 64),
        replace(proof, amazon_digest=tv_handoff.amazon_digest("amzn1.account.SOMEONE")),
    ]
    verified = hasher.verifications
    for wrong in forged:
        with pytest.raises(errors.AmazonProofRequired):
            await link_on_phone(ctx, found, wrong)
    assert hasher.verifications == verified  # refused before the password was checked
    assert await attempts_left(db, outcome.flow.id_hash) == outcome.flow.attempts_left
    assert await kept_events(db, "amazon.refused") == [
        f"reason=amazon_proof_required grant={found.record.id}"
    ] * len(forged)


async def test_a_wrong_password_on_the_phone_spends_one_of_the_flows_attempts(
    ctx: Context, db: Database
) -> None:
    await make_user(ctx, verified=True)
    outcome, offer = await tv_flow(ctx)
    found = await typed(ctx, offer)
    proof = await prove(ctx, found)
    with pytest.raises(errors.InvalidCredentials) as wrong:
        await link_on_phone(ctx, found, proof, password="not the password")
    left = await attempts_left(db, outcome.flow.id_hash)
    assert left == outcome.flow.attempts_left - 1  # kept through the rollback
    assert wrong.value.extra["attempts_left"] <= left
    assert "reason=invalid_credentials" in await kept_events(db, "amazon.refused")
    # The code still works: the person may try again.
    assert isinstance(await link_on_phone(ctx, await typed(ctx, offer), proof), FlowCompleted)


async def test_a_registration_is_finished_on_the_phone_without_a_proof(
    ctx: Context, clock: FixedClock
) -> None:
    outcome, offer = await tv_flow(ctx, amazon_profile(email=None))
    assert isinstance(outcome, amazon.RegistrationRequired)
    found = await typed(ctx, offer)
    with pytest.raises(errors.AmazonUserMismatch):  # nothing to prove: it links no account
        await prove(ctx, found)
    form = RegistrationForm(username="", name="Ada", email="ada@phone.example")
    async with ctx.transaction() as tx:
        flow_id, _ = await tv_handoff.handoff_flow(tx, found)
        done = await amazon.complete_registration(tx, flow_id, form, amazon.OnAnotherDevice())
        await tv_handoff.close_handoff(tx, found)
    assert isinstance(done, FlowCompleted)
    async with ctx.transaction() as tx:
        collected = await amazon.collect_completed_flow(tx, outcome.flow_id)
    assert isinstance(collected, amazon.SignedInWithAmazon)
    assert collected.created
    assert collected.signed_in.account.email == "ada@phone.example"


async def test_a_new_offer_replaces_the_old_code_and_none_outlives_the_flow(
    ctx: Context, clock: FixedClock
) -> None:
    await make_user(ctx, verified=True)
    outcome, first = await tv_flow(ctx)
    async with ctx.transaction() as tx:
        second = await tv_handoff.offer_handoff(tx, flow_id=outcome.flow_id, flow=outcome.flow)
    with pytest.raises(errors.InvalidUserCode):
        await typed(ctx, first)
    assert (await typed(ctx, second)).record.flow_id_hash == outcome.flow.id_hash
    clock.advance(ctx.settings.flow_ttl_seconds)
    with pytest.raises(errors.FlowExpired):
        async with ctx.transaction() as tx:
            await tv_handoff.offer_handoff(tx, flow_id=outcome.flow_id, flow=outcome.flow)


async def test_handoff_rows_found_again_only_with_their_own_code(ctx: Context) -> None:
    await make_user(ctx, verified=True)
    _, offer = await tv_flow(ctx)
    found = await typed(ctx, offer)
    async with ctx.transaction() as tx:
        again = await tv_handoff.handoff_by_grant(tx, grant_id=found.record.id, code=found.code)
        assert again is not None
        assert again.record.id == found.record.id
        assert (
            await tv_handoff.handoff_by_grant(tx, grant_id="dgr_unknown", code=found.code) is None
        )
        assert (
            await tv_handoff.handoff_by_grant(tx, grant_id=found.record.id, code="not a code")
            is None
        )
        # A well-formed code of another row names this row's id: its sealed flow id is
        # bound to its own code's digest, so it does not open.
        other = await tv_handoff.handoff_by_grant(tx, grant_id=found.record.id, code="BCDFGHJK")
        assert other is not None
        with pytest.raises(errors.InvalidUserCode):
            tv_handoff.handoff_flow_id(tx.deps.sealer, other)
        # Our own device grant's code is no hand-off.
        issued = await authorize_device(tx, device_name=None)
        device_code = await find_code(tx, issued.user_code)
        with pytest.raises(errors.InvalidUserCode):
            tv_handoff.handoff_flow_id(tx.deps.sealer, device_code)
        assert (
            await tv_handoff.handoff_by_grant(
                tx, grant_id=device_code.record.id, code=issued.user_code
            )
            is None
        )
