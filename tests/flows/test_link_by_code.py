"""Proving the local account by a code e-mailed to its verified address (flows/amazon/
link_by_code.py, security.md item 6b), on a real database (SQLite, and PostgreSQL under
LWA_TEST_DATABASE=postgres): only for a verified address, only to that address, only for
the flow it was sent for, once, within its lifetime and the flow's attempts, however many
guesses race."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.email_codes import MAX_WRONG_CODES
from lwa_accounts.core.models import Account, AmazonProfile
from lwa_accounts.flows import amazon, tv_handoff
from lwa_accounts.flows.amazon import FlowFinished, LinkRequired, SignedInWithAmazon
from lwa_accounts.flows.context import Context, Deps, Tx
from lwa_accounts.passwords import common_passwords
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import QueuedMail, code_in, queued_mail
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import PASSWORD, CountingHasher, context_of, fast_settings, make_user
from tests.flows.test_tv_handoff import prove, tv_flow, typed

LOCAL_EMAIL = "ada@example.com"
# Amazon's copy of the address, spelled differently: it matches the account only as a hint.
ADA = AmazonProfile(
    user_id="amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",
    client_id="amzn1.application-oa2-client.web",
    name="Ada Lovelace",
    email="ADA@Example.COM",
)
BROWSER = amazon.Browser("browser-binding-secret")
DEVICE = amazon.Device()


async def verified_user(ctx: Context) -> Account:
    account = await make_user(ctx, email=LOCAL_EMAIL)
    return await set_verified(ctx, account, True)


async def set_verified(ctx: Context, account: Account, verified: bool) -> Account:
    """What e-mail verification does, set directly through the store."""
    async with ctx.transaction() as tx:
        return await tx.accounts.update(account.id, email_verified=verified)


async def start(
    ctx: Context, profile: AmazonProfile = ADA, starter: amazon.Browser | amazon.Device = DEVICE
) -> LinkRequired:
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx, profile, kind="device", device_name="Living room TV", starter=starter
        )
    assert isinstance(outcome, LinkRequired), outcome
    return outcome


async def send(
    ctx: Context, flow_id: str, originator: amazon.Originator = DEVICE
) -> amazon.CodeSent:
    async with ctx.transaction() as tx:
        attempt = await amazon.begin_code_link(tx, flow_id, originator)
        return await amazon.send_link_code(tx, attempt)


async def enter(
    ctx: Context, flow_id: str, typed_code: str, originator: amazon.Originator = DEVICE
) -> FlowFinished:
    async def begin(tx: Tx) -> amazon.LinkAttempt:
        return await amazon.begin_code_link(tx, flow_id, originator)

    return await amazon.link_with_code(ctx, begin, typed_code)


async def confirm(ctx: Context, flow_id: str, password: str) -> FlowFinished:
    async with ctx.transaction() as tx:
        return await amazon.confirm_link(tx, flow_id, password, DEVICE)


async def mails(db: Database, to: str = LOCAL_EMAIL) -> list[QueuedMail]:
    return [m for m in await queued_mail(db, to) if m.kind == "prove_account"]


async def last_code(db: Database) -> str:
    return code_in((await mails(db))[-1])


def other_than(code: str) -> str:
    return "000000" if code != "000000" else "111111"


async def flow_attempts(db: Database, flow: LinkRequired) -> int:
    async with db.transaction() as stores:
        row = await stores.pending_flows.get(flow.flow.id_hash)
    assert row is not None
    return row.attempts_left


async def events(db: Database, kind: str) -> list[str | None]:
    async with db.transaction() as stores:
        return [e.detail for e in reversed(await stores.audit.list(limit=1000)) if e.kind == kind]


# ---- the journey ----


async def test_the_right_code_links_like_the_password(ctx: Context, db: Database) -> None:
    local = await verified_user(ctx)
    flow = await start(ctx)
    assert amazon.code_offer(local) == "a•••@example.com"
    sent = await send(ctx, flow.flow_id)
    assert sent.sent_to == "a•••@example.com"
    assert sent.expires_at <= flow.flow.expires_at  # never outlives the step
    done = await enter(ctx, flow.flow_id, await last_code(db))
    assert isinstance(done, SignedInWithAmazon)
    assert not done.created
    assert (done.signed_in.account.id, done.signed_in.session.kind) == (local.id, "device")
    async with db.transaction() as stores:
        link = await stores.identities.get_by_amazon_user_id(ADA.user_id)
    assert link is not None
    assert link.account_id == local.id
    assert await events(db, "amazon.link_code_sent") == [None]
    assert await events(db, "amazon.linked") == ["method=code"]
    # From now on Amazon alone signs in.
    async with ctx.transaction() as tx:
        again = await amazon.sign_in_with_profile(
            tx, ADA, kind="device", device_name=None, starter=DEVICE
        )
    assert isinstance(again, SignedInWithAmazon)
    assert again.signed_in.account.id == local.id


async def test_the_code_goes_only_to_the_local_verified_address(ctx: Context, db: Database) -> None:
    await verified_user(ctx)
    flow = await start(ctx)
    await send(ctx, flow.flow_id)
    sent = await mails(db)
    assert [m.to for m in sent] == [LOCAL_EMAIL]
    assert await queued_mail(db, ADA.email) == []  # never Amazon's spelling of it
    message = sent[0]
    code = code_in(message)
    assert code in message.html.replace(" ", "")
    # A code and no link: nothing to open on another device that would finish the step.
    assert "http" not in message.text
    assert "<a " not in message.html
    assert code not in message.subject  # subjects are stored and shown in clear
    assert "Never tell this code to anyone" in message.text
    assert "ada" in message.text  # the account it is for
    assert ctx.client.ip is not None
    assert ctx.client.ip in message.text


async def test_an_unverified_address_gets_no_code(ctx: Context, db: Database) -> None:
    # A link step whose account's address is not verified (any more: an unverified holder
    # of Amazon's address gets no link step at all).
    local = await verified_user(ctx)
    flow = await start(ctx)
    local = await set_verified(ctx, local, False)
    assert amazon.code_offer(local) is None
    with pytest.raises(errors.CodeProofUnavailable) as refused:
        await send(ctx, flow.flow_id)
    assert refused.value.status == 409
    assert await mails(db) == []
    with pytest.raises(errors.CodeProofUnavailable):
        await enter(ctx, flow.flow_id, "123456")
    assert await flow_attempts(db, flow) == 5  # nothing was spent
    assert await events(db, "amazon.refused") == ["reason=code_proof_unavailable"] * 2


async def test_a_code_for_one_flow_never_completes_another(ctx: Context, db: Database) -> None:
    await verified_user(ctx)
    flow_a = await start(ctx)
    flow_b = await start(ctx)  # the same Amazon user and account, another step
    await send(ctx, flow_a.flow_id)
    code_a = await last_code(db)
    with pytest.raises(errors.EmailLinkExpired):  # no code was sent for B
        await enter(ctx, flow_b.flow_id, code_a)
    assert await flow_attempts(db, flow_b) == 5
    await send(ctx, flow_b.flow_id)  # B's code replaces A's
    code_b = await last_code(db)
    with pytest.raises(errors.WrongEmailCode if code_a != code_b else errors.EmailLinkExpired):
        await enter(ctx, flow_b.flow_id, code_a)
    with pytest.raises(errors.EmailLinkExpired):  # A's code is spent, B's is not A's
        await enter(ctx, flow_a.flow_id, code_b)
    assert isinstance(await enter(ctx, flow_b.flow_id, code_b), SignedInWithAmazon)


async def test_a_code_is_the_flows_originators_only(ctx: Context, db: Database) -> None:
    await verified_user(ctx)
    flow = await start(ctx, starter=BROWSER)
    await send(ctx, flow.flow_id, BROWSER)
    code = await last_code(db)
    for thief in (DEVICE, amazon.Browser("another-browser")):
        with pytest.raises(errors.FlowNotFound):
            await enter(ctx, flow.flow_id, code, thief)
    assert isinstance(await enter(ctx, flow.flow_id, code, BROWSER), SignedInWithAmazon)


async def test_the_code_and_the_flow_are_single_use(ctx: Context, db: Database) -> None:
    await verified_user(ctx)
    flow = await start(ctx)
    await send(ctx, flow.flow_id)
    code = await last_code(db)
    assert isinstance(await enter(ctx, flow.flow_id, code), SignedInWithAmazon)
    with pytest.raises(errors.FlowExpired):
        await enter(ctx, flow.flow_id, code)
    with pytest.raises(errors.FlowExpired):
        await send(ctx, flow.flow_id)
    with pytest.raises(errors.FlowExpired):
        await confirm(ctx, flow.flow_id, PASSWORD)
    async with db.transaction() as stores:
        assert await stores.identities.get_for_account(flow.flow.target_account_id or "")
    assert await events(db, "amazon.linked") == ["method=code"]


async def test_an_expired_code_is_refused(ctx: Context, db: Database) -> None:
    await verified_user(ctx)
    flow = await start(ctx)
    await send(ctx, flow.flow_id)
    code = await last_code(db)
    # The code's own lifetime (it never outlives the flow, so end it by hand here).
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE email_codes SET expires_at = :at"), {"at": ctx.now().replace(year=2020)}
        )
    with pytest.raises(errors.EmailLinkExpired):
        await enter(ctx, flow.flow_id, code)
    assert await flow_attempts(db, flow) == 5  # no code was waiting: nothing spent


async def test_an_expired_flow_takes_its_code_with_it(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    await verified_user(ctx)
    flow = await start(ctx)
    clock.advance(300)
    sent = await send(ctx, flow.flow_id)
    assert sent.expires_at == flow.flow.expires_at
    code = await last_code(db)
    clock.advance(301)
    with pytest.raises(errors.FlowExpired):
        await enter(ctx, flow.flow_id, code)
    assert await events(db, "amazon.linked") == []


# ---- attempts ----


async def test_wrong_codes_spend_the_flows_attempts_with_wrong_passwords(
    ctx: Context, db: Database
) -> None:
    await verified_user(ctx)
    flow = await start(ctx)
    with pytest.raises(errors.InvalidCredentials):
        await confirm(ctx, flow.flow_id, "not the password")
    assert await flow_attempts(db, flow) == 4
    await send(ctx, flow.flow_id)
    code = await last_code(db)
    with pytest.raises(errors.WrongEmailCode) as wrong:
        await enter(ctx, flow.flow_id, other_than(code))
    assert wrong.value.extra["attempts_left"] == 3  # the flow's, fewer than the code's 4
    assert await flow_attempts(db, flow) == 3
    assert "reason=wrong_email_code" in await events(db, "amazon.refused")
    assert isinstance(await enter(ctx, flow.flow_id, code), SignedInWithAmazon)


async def test_a_flow_out_of_attempts_refuses_even_the_right_code(
    tmp_path: Path, clock: FixedClock, hasher: CountingHasher
) -> None:
    settings = fast_settings(tmp_path, flow_max_password_attempts=2)
    db = Database.from_settings(settings, clock=clock)
    await db.upgrade()
    throttle = Throttle(settings)
    deps = Deps(
        settings=settings,
        hasher=hasher,
        throttle=throttle,
        clock=clock,
        common_passwords=common_passwords(),
    )
    ctx = context_of(db, deps)
    try:
        await verified_user(ctx)
        flow = await start(ctx)
        await send(ctx, flow.flow_id)
        code = await last_code(db)
        lefts = []
        for _ in range(2):
            with pytest.raises(errors.WrongEmailCode) as wrong:
                await enter(ctx, flow.flow_id, other_than(code))
            lefts.append(wrong.value.extra["attempts_left"])
        assert lefts == [1, 0]
        with pytest.raises(errors.FlowExpired):
            await enter(ctx, flow.flow_id, code)
        with pytest.raises(errors.FlowExpired):
            await send(ctx, flow.flow_id)
    finally:
        await throttle.aclose()
        await db.dispose()


async def test_a_spent_password_throttle_leaves_the_code(ctx: Context, db: Database) -> None:
    """Guessing passwords (3 per account and address here) locks the password out, not
    the owner: their code still links."""
    await verified_user(ctx)
    flow = await start(ctx)
    for _ in range(3):
        with pytest.raises(errors.InvalidCredentials):
            await confirm(ctx, flow.flow_id, "a guess")
    with pytest.raises(errors.TooManyAttempts):
        await confirm(ctx, flow.flow_id, PASSWORD)
    await send(ctx, flow.flow_id)
    assert isinstance(await enter(ctx, flow.flow_id, await last_code(db)), SignedInWithAmazon)


async def test_parallel_guesses_get_no_more_than_the_flows_attempts(
    ctx: Context, db: Database
) -> None:
    await verified_user(ctx)
    flow = await start(ctx)
    await send(ctx, flow.flow_id)
    code = await last_code(db)
    guesses = [f"{n:06d}" for n in range(20) if f"{n:06d}" != code][:12]
    outcomes = await asyncio.gather(
        *(enter(ctx, flow.flow_id, guess) for guess in guesses), return_exceptions=True
    )
    assert not any(isinstance(o, SignedInWithAmazon) for o in outcomes)
    judged = [o for o in outcomes if not isinstance(o, errors.FlowExpired)]
    assert len(judged) <= 5, outcomes  # flow_max_password_attempts
    assert all(isinstance(o, errors.EmailLinkRefused) for o in judged), outcomes
    assert await flow_attempts(db, flow) == 0
    with pytest.raises(errors.FlowExpired):
        await enter(ctx, flow.flow_id, code)
    assert await events(db, "amazon.linked") == []


async def test_parallel_guesses_get_no_more_than_the_codes_budget(
    tmp_path: Path, clock: FixedClock, hasher: CountingHasher
) -> None:
    settings = fast_settings(tmp_path, flow_max_password_attempts=50)
    db = Database.from_settings(settings, clock=clock)
    await db.upgrade()
    throttle = Throttle(settings)
    deps = Deps(
        settings=settings,
        hasher=hasher,
        throttle=throttle,
        clock=clock,
        common_passwords=common_passwords(),
    )
    ctx = context_of(db, deps)
    try:
        await verified_user(ctx)
        flow = await start(ctx)
        await send(ctx, flow.flow_id)
        code = await last_code(db)
        guesses = [f"{n:06d}" for n in range(20) if f"{n:06d}" != code][:12]
        outcomes = await asyncio.gather(
            *(enter(ctx, flow.flow_id, guess) for guess in guesses), return_exceptions=True
        )
        assert all(isinstance(o, errors.EmailLinkRefused) for o in outcomes), outcomes
        wrong = [o for o in outcomes if isinstance(o, errors.WrongEmailCode)]
        assert len(wrong) <= MAX_WRONG_CODES - 1
        async with db.engine.connect() as conn:
            compared = (await conn.execute(text("SELECT attempts FROM email_codes"))).scalar()
        assert compared is not None
        assert compared <= MAX_WRONG_CODES
        with pytest.raises(errors.EmailLinkRefused):  # the code is dead, even when right
            await enter(ctx, flow.flow_id, code)
    finally:
        await throttle.aclose()
        await db.dispose()


async def test_sending_takes_from_the_mail_budget(ctx: Context, db: Database) -> None:
    await verified_user(ctx)
    flow = await start(ctx)
    outcomes: list[amazon.CodeSent | errors.TooManyAttempts] = []
    for _ in range(6):  # email_limit_per_account: 5/hour (other mail may count too)
        try:
            outcomes.append(await send(ctx, flow.flow_id))
        except errors.TooManyAttempts as throttled:
            outcomes.append(throttled)
    sent = sum(isinstance(o, amazon.CodeSent) for o in outcomes)
    assert 0 < sent <= 5
    refused = outcomes[sent]
    assert isinstance(refused, errors.TooManyAttempts)
    assert refused.retry_after
    assert len(await mails(db)) == sent  # the refused one queued nothing
    assert "reason=too_many_attempts" in await events(db, "amazon.refused")


async def test_an_address_changed_or_unverified_since_the_code_proves_nothing(
    ctx: Context, db: Database
) -> None:
    local = await verified_user(ctx)
    flow = await start(ctx)
    await send(ctx, flow.flow_id)
    code = await last_code(db)
    await set_verified(ctx, local, False)
    with pytest.raises(errors.CodeProofUnavailable):
        await enter(ctx, flow.flow_id, code)
    async with ctx.transaction() as tx:
        await tx.accounts.update(local.id, email="ada@example.org", email_verified=True)
    with pytest.raises(errors.EmailLinkExpired):
        await enter(ctx, flow.flow_id, code)
    assert await events(db, "amazon.linked") == []


# ---- the phone (a TV's flow handed off) ----


async def test_on_the_phone_the_code_needs_the_amazon_proof_first(
    ctx: Context, db: Database
) -> None:
    local = await verified_user(ctx)
    outcome, offer = await tv_flow(ctx, ADA)
    assert isinstance(outcome, LinkRequired)
    found = await typed(ctx, offer)

    async def begin_without(tx: Tx) -> amazon.LinkAttempt:
        return await tv_handoff.begin_handoff_link(
            tx, found, proof=None, start=amazon.begin_code_link
        )

    with pytest.raises(errors.AmazonProofRequired):
        async with ctx.transaction() as tx:
            await amazon.send_link_code(tx, await begin_without(tx))
    with pytest.raises(errors.AmazonProofRequired):
        await amazon.link_with_code(ctx, begin_without, "123456")
    assert await mails(db) == []
    assert await flow_attempts(db, outcome) == 5

    proof = await prove(ctx, found, ADA)  # this phone signed in with the TV's Amazon user

    async def begin(tx: Tx) -> amazon.LinkAttempt:
        return await tv_handoff.begin_handoff_link(
            tx, found, proof=proof, start=amazon.begin_code_link
        )

    async with ctx.transaction() as tx:
        await amazon.send_link_code(tx, await begin(tx))

    async def close(tx: Tx, _: FlowFinished) -> None:
        await tv_handoff.close_handoff(tx, found)

    done = await amazon.link_with_code(ctx, begin, await last_code(db), after=close)
    assert isinstance(done, amazon.FlowCompleted)  # for the TV: the phone gets no session
    assert done.account.id == local.id
    async with ctx.transaction() as tx:
        collected = await amazon.collect_completed_flow(tx, outcome.flow_id)
    assert isinstance(collected, SignedInWithAmazon)
    assert collected.signed_in.account.id == local.id
    with pytest.raises(errors.InvalidUserCode):  # the hand-off code is spent
        await typed(ctx, offer)
