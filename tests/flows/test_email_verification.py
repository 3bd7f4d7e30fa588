"""E-mail verification (issue 13 item 2): the mail a registration queues, the link and the
code, a changed address that waits for its confirmation, and the verified-claim rule
(``flows/email_claims.py``), raced. On SQLite, and on PostgreSQL with
``LWA_TEST_DATABASE=postgres``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account, AmazonProfile
from lwa_accounts.flows import amazon
from lwa_accounts.flows.accounts import register
from lwa_accounts.flows.amazon import SignedInWithAmazon
from lwa_accounts.flows.context import Context, Deps
from lwa_accounts.flows.email_verification import (
    pending_change,
    preview_link,
    request_change,
    resend,
    verify_code,
    verify_link,
)
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import QueuedMail, code_in, link_in, queued_mail
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import CLIENT, PASSWORD, make_user, verify_address

ADA_AMAZON = AmazonProfile(
    user_id="amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",
    client_id="amzn1.application-oa2-client.web",
    name="Ada Lovelace",
    email="ada@example.com",
)


@asynccontextmanager
async def custom(db: Database, deps: Deps, **limits: str) -> AsyncIterator[Context]:
    """A request context whose throttle has these e-mail limits."""
    settings = deps.settings.model_copy(update=limits)
    throttle = Throttle(settings)
    try:
        yield Context(replace(deps, settings=settings, throttle=throttle), db, CLIENT)
    finally:
        await throttle.aclose()


def database(ctx: Context) -> Database:
    assert isinstance(ctx.database, Database)
    return ctx.database


async def mail_to(ctx: Context, address: str, kind: str = "verify_email") -> list[QueuedMail]:
    return [m for m in await queued_mail(database(ctx), address) if m.kind == kind]


def token_of(mail: QueuedMail) -> str:
    link = link_in(mail, "/verify-email?token=")
    return link.partition("?token=")[2]


async def account(ctx: Context, account_id: str) -> Account:
    async with ctx.transaction() as tx:
        found = await tx.accounts.get(account_id)
    assert found is not None
    return found


async def kinds(ctx: Context) -> list[str]:
    async with database(ctx).transaction() as stores:
        return [e.kind for e in reversed(await stores.audit.list(limit=500))]


async def by_link(ctx: Context, token: object, signed_in: Account | None = None) -> Account:
    async with ctx.transaction() as tx:
        return (await verify_link(tx, token, signed_in=signed_in)).account


async def by_code(ctx: Context, who: Account, typed: str) -> Account:
    async with ctx.transaction() as tx:
        return (await verify_code(tx, who, typed)).account


async def ask(ctx: Context, who: Account, email: str) -> None:
    async with ctx.transaction() as tx:
        await request_change(tx, who, email)


# ---- registration -----------------------------------------------------------------------


async def test_registration_queues_the_mail_with_a_link_and_a_code(ctx: Context) -> None:
    ada = await make_user(ctx)
    [mail] = await mail_to(ctx, "ada@example.com")
    assert mail.subject == "Confirm your e-mail address for lwa-accounts"
    assert f"{ctx.settings.public_url}/verify-email?token=" in mail.text
    assert len(code_in(mail)) == 6
    assert '"ada"' in mail.text  # which account it confirms
    assert "/verify-email?token=" in mail.html
    assert (await kinds(ctx))[:2] == ["account.registered", "email.verification_sent"]
    assert not (await account(ctx, ada.id)).email_verified


async def test_a_refused_registration_queues_nothing(ctx: Context) -> None:
    await make_user(ctx)
    with pytest.raises(errors.UsernameTaken):
        await make_user(ctx, email="other@example.com")
    assert await mail_to(ctx, "other@example.com") == []


async def test_no_address_no_mail(ctx: Context) -> None:
    await make_user(ctx, email=None)
    assert await queued_mail(database(ctx)) == []


async def test_a_spent_mail_budget_does_not_refuse_the_account(db: Database, deps: Deps) -> None:
    async with custom(db, deps, email_limit_per_ip="1/hour") as tight:
        await make_user(tight)
        bob = await make_user(tight, username="bob", email="bob@example.com")
    assert bob.email == "bob@example.com"
    assert await mail_to(tight, "bob@example.com") == []  # the person can ask from /account
    assert "email.verification_deferred" in await kinds(tight)


# ---- the link and the code ----------------------------------------------------------------


async def test_the_link_verifies_once(ctx: Context) -> None:
    ada = await make_user(ctx)
    [mail] = await mail_to(ctx, "ada@example.com")
    async with ctx.transaction() as tx:  # a look (a GET, a mail scanner) spends nothing
        preview = await preview_link(tx, token_of(mail), signed_in=None)
    assert (preview.account.id, preview.proof.email, preview.held_elsewhere) == (
        ada.id,
        "ada@example.com",
        False,
    )
    verified = await by_link(ctx, token_of(mail))
    assert verified.email_verified
    assert verified.email == "ada@example.com"
    assert "email.verified" in await kinds(ctx)
    assert "email.changed" not in await kinds(ctx)
    with pytest.raises(errors.EmailLinkUsed):
        await by_link(ctx, token_of(mail))


async def test_the_code_verifies_for_its_own_account_only(ctx: Context) -> None:
    ada = await make_user(ctx)
    bob = await make_user(ctx, username="bob", email="bob@example.com")
    code = code_in((await mail_to(ctx, "ada@example.com"))[0])
    # Bob's live proof is for his own address: Ada's code is just a wrong one there.
    with pytest.raises(errors.WrongEmailCode):
        await by_code(ctx, bob, code)
    assert (await by_code(ctx, ada, code)).email_verified
    assert not (await account(ctx, bob.id)).email_verified


async def test_a_link_opened_by_another_signed_in_account_is_refused(ctx: Context) -> None:
    ada = await make_user(ctx)
    bob = await make_user(ctx, username="bob", email="bob@example.com")
    token = token_of((await mail_to(ctx, "ada@example.com"))[0])
    for attempt in (by_link(ctx, token, signed_in=bob), _preview(ctx, token, bob)):
        with pytest.raises(errors.EmailLinkForAnotherAccount):
            await attempt
    assert not (await account(ctx, ada.id)).email_verified
    assert (await account(ctx, bob.id)).email == "bob@example.com"
    assert (await by_link(ctx, token, signed_in=ada)).email_verified  # still Ada's to use


async def _preview(ctx: Context, token: str, who: Account) -> None:
    async with ctx.transaction() as tx:
        await preview_link(tx, token, signed_in=who)


async def test_an_expired_link_and_code_are_refused(ctx: Context, clock: FixedClock) -> None:
    ada = await make_user(ctx)
    mail = (await mail_to(ctx, "ada@example.com"))[0]
    clock.advance(24 * 3600 + 1)
    with pytest.raises(errors.EmailLinkExpired):
        await by_link(ctx, token_of(mail))
    with pytest.raises(errors.EmailLinkExpired):
        await by_code(ctx, ada, code_in(mail))
    assert not (await account(ctx, ada.id)).email_verified


async def test_resend_replaces_the_mail_and_refuses_a_verified_address(ctx: Context) -> None:
    ada = await make_user(ctx)
    async with ctx.transaction() as tx:
        sent = await resend(tx, ada)
    assert sent.email == "ada@example.com"
    first, second = await mail_to(ctx, "ada@example.com")
    with pytest.raises(errors.EmailLinkUsed):
        await by_link(ctx, token_of(first))
    verified = await by_link(ctx, token_of(second))
    async with ctx.transaction() as tx:
        with pytest.raises(errors.EmailAlreadyVerified):
            await resend(tx, verified)
    nobody = await make_user(ctx, username="nomail", email=None)
    async with ctx.transaction() as tx:
        with pytest.raises(errors.ValidationFailed) as refused:
            await resend(tx, nobody)
    assert set(refused.value.errors) == {"email"}


# ---- changing the address -------------------------------------------------------------------


async def test_a_new_address_waits_for_its_confirmation_and_the_old_one_is_told(
    ctx: Context,
) -> None:
    ada = await make_user(ctx, verified=True)
    await ask(ctx, ada, "Ada@New.Example")
    assert (await account(ctx, ada.id)).email == "ada@example.com"  # kept meanwhile
    assert (await account(ctx, ada.id)).email_verified
    [notice] = await mail_to(ctx, "ada@example.com", "notice_email_changed")
    assert "A•••@New.Example" in notice.text
    assert notice.subject == "Your lwa-accounts e-mail address is being changed"
    assert "/not-me?token=" in notice.text  # "This wasn't me" cancels it
    [mail] = await mail_to(ctx, "Ada@New.Example")
    assert mail.subject == "Confirm your new e-mail address for lwa-accounts"
    now = await account(ctx, ada.id)
    async with ctx.transaction() as tx:
        waiting = await pending_change(tx, now)
    assert waiting is not None
    assert waiting.email == "Ada@New.Example"
    moved = await by_code(ctx, ada, code_in(mail))
    assert (moved.email, moved.email_verified) == ("Ada@New.Example", True)
    # The old address hears that it no longer is the account's (its last message).
    told = await mail_to(ctx, "ada@example.com", "notice_email_changed")
    assert [m.subject for m in told] == [
        "Your lwa-accounts e-mail address is being changed",
        "Your lwa-accounts e-mail address was changed",
    ]
    assert await mail_to(ctx, "Ada@New.Example", "notice_email_changed") == []
    assert {"email.change_requested", "email.changed"} <= set(await kinds(ctx))
    async with ctx.transaction() as tx:
        assert await pending_change(tx, moved) is None


async def test_asking_for_the_own_address_cancels_a_pending_change(ctx: Context) -> None:
    ada = await make_user(ctx, verified=True)
    await ask(ctx, ada, "ada@new.example")
    await ask(ctx, ada, "ADA@example.com")
    [mail] = await mail_to(ctx, "ada@new.example")
    with pytest.raises(errors.EmailLinkUsed):
        await by_link(ctx, token_of(mail))
    assert (await account(ctx, ada.id)).email == "ada@example.com"


async def test_an_address_another_account_confirmed_is_refused_when_asked(ctx: Context) -> None:
    await make_user(ctx, verified=True)
    bob = await make_user(ctx, username="bob", email="bob@example.com")
    async with ctx.transaction() as tx:
        with pytest.raises(errors.EmailTaken):
            await request_change(tx, bob, "ada@example.com")
    assert await mail_to(ctx, "ada@example.com", "verify_email") != []  # only Ada's own
    assert len(await mail_to(ctx, "ada@example.com")) == 1
    assert await mail_to(ctx, "bob@example.com", "notice_email_changed") == []


async def test_an_address_confirmed_elsewhere_meanwhile_is_refused_and_nothing_written(
    ctx: Context,
) -> None:
    ada = await make_user(ctx)  # holds ada@example.com, unverified
    bob = await make_user(ctx, username="bob", email="bob@example.com", verified=True)
    await ask(ctx, bob, "ada@example.com")
    bobs = (await mail_to(ctx, "ada@example.com"))[-1]
    await verify_address(ctx, ada)  # Ada confirms first
    with pytest.raises(errors.EmailTaken) as refused:
        await by_link(ctx, token_of(bobs))
    assert "Nothing was changed" in refused.value.detail
    assert (await account(ctx, bob.id)).email == "bob@example.com"
    assert (await account(ctx, ada.id)).email == "ada@example.com"
    assert "email.released" not in await kinds(ctx)


# ---- the verified claim -------------------------------------------------------------------


async def test_a_verified_claim_takes_the_address_from_an_unverified_holder(
    ctx: Context,
) -> None:
    squatter = await make_user(ctx, username="mallory")  # typed ada@example.com
    ada = await make_user(ctx, username="ada2", email="ada@work.example", verified=True)
    await ask(ctx, ada, "ada@example.com")
    token = token_of((await mail_to(ctx, "ada@example.com"))[-1])
    async with ctx.transaction() as tx:
        preview = await preview_link(tx, token, signed_in=None)
    assert preview.held_elsewhere  # the page warns: another account loses it
    claimed = await by_link(ctx, token)
    assert (claimed.email, claimed.email_verified) == ("ada@example.com", True)
    lost = await account(ctx, squatter.id)
    assert (lost.email, lost.email_verified) == (None, False)
    async with database(ctx).transaction() as stores:
        events = [e for e in await stores.audit.list(limit=100) if e.kind == "email.released"]
    assert [(e.account_id, e.detail) for e in events] == [(squatter.id, f"claimed_by={ada.id}")]


async def test_claims_racing_for_one_address_leave_exactly_one_owner(
    db: Database, deps: Deps
) -> None:
    """An unverified holder confirming its own address and five other accounts confirming
    a change to it, all at once: exactly one gets it; every other is EmailTaken and keeps
    what it had (the holder loses it if another wins)."""
    async with custom(db, deps, email_limit_per_ip="1000/hour") as ctx:
        for n in range(3):
            await _race(ctx, n)


async def _race(ctx: Context, n: int) -> None:
    if True:
        target = f"race{n}@example.com"
        holder = await make_user(ctx, username=f"holder{n}", email=target)
        others = [
            await make_user(ctx, username=f"r{n}x{i}", email=f"r{n}x{i}@example.com", verified=True)
            for i in range(5)
        ]
        for other in others:
            await ask(ctx, other, target)
        codes = [code_in(m) for m in await mail_to(ctx, target)]
        claimants = [holder, *others]
        assert len(codes) == len(claimants)  # one live proof each (the order of asking)
        results = await asyncio.gather(
            *(by_code(ctx, who, code) for who, code in zip(claimants, codes, strict=True)),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, Account)]
        assert len(winners) == 1, results
        assert all(isinstance(r, errors.EmailTaken) for r in results if r not in winners)
        async with ctx.transaction() as tx:
            owner = await tx.accounts.get_by_email(target)
            everyone = [await tx.accounts.get(c.id) for c in claimants]
        assert owner is not None
        assert (owner.id, owner.email_verified) == (winners[0].id, True)
        for before, now in zip(claimants, everyone, strict=True):
            assert now is not None
            if now.id != owner.id:
                assert now.email == (None if before.id == holder.id else before.email)


# ---- accounts made by Amazon --------------------------------------------------------------


async def amazon_sign_in(ctx: Context, profile: AmazonProfile) -> SignedInWithAmazon:
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx, profile, kind="device", starter=amazon.Device()
        )
    assert isinstance(outcome, SignedInWithAmazon)
    return outcome


async def test_an_amazon_account_gets_the_mail_for_its_address(ctx: Context) -> None:
    created = (await amazon_sign_in(ctx, ADA_AMAZON)).signed_in.account
    assert (created.email, created.email_verified) == ("ada@example.com", False)
    [mail] = await mail_to(ctx, "ada@example.com")
    assert (await by_link(ctx, token_of(mail))).email_verified


async def test_an_amazon_account_claims_an_address_held_unverified(ctx: Context) -> None:
    """The squatter keeps the address only until its owner confirms it."""
    squatter = await make_user(ctx, username="mallory")
    created = (await amazon_sign_in(ctx, ADA_AMAZON)).signed_in.account
    assert created.email is None  # made without it: someone else holds it for now
    [squatters, claim] = await mail_to(ctx, "ada@example.com")
    assert '"mallory"' in squatters.text
    assert f'"{created.username}"' in claim.text
    assert "asked to use ada@example.com" in claim.text
    assert "Another account uses this address without having confirmed it" in claim.text
    assert "Another account uses" not in squatters.text
    owner = await by_link(ctx, token_of(claim))
    assert (owner.id, owner.email, owner.email_verified) == (created.id, "ada@example.com", True)
    assert (await account(ctx, squatter.id)).email is None
    # From now on the address is a verified one: the squatter cannot register it again.
    with pytest.raises(errors.EmailTaken):
        async with ctx.transaction() as tx:
            await register(
                tx, username="mallory2", email="ada@example.com", name="M", password=PASSWORD
            )
    # ... and nobody's Amazon sign-in with that address gets a link step to a squatter.
    stranger = replace(ADA_AMAZON, user_id="amzn1.account.CCCCCCCCCCCCCCCCCCCCCCCCCCCC")
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx, stranger, kind="device", starter=amazon.Device()
        )
    assert not isinstance(outcome, amazon.LinkRequired)
