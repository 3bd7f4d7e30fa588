"""Editing the profile (issue 13 item 5): every field checked first, one transaction, an
e-mail change only with the owner's proof, and "use this" from what Amazon last sent."""

from __future__ import annotations

import pytest

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account, AmazonProfile
from lwa_accounts.flows import amazon
from lwa_accounts.flows.accounts import sign_in_with_password
from lwa_accounts.flows.amazon import SignedInWithAmazon
from lwa_accounts.flows.context import Context
from lwa_accounts.flows.profile import (
    ProfileChanges,
    ProfileUpdate,
    update_profile,
    use_amazon_value,
)
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import queued_mail
from tests.flows.conftest import PASSWORD, make_user

AMAZON = AmazonProfile(
    user_id="amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",
    client_id="amzn1.application-oa2-client.web",
    name="Ada King",
    email="ada@amazon.example",
    postal_code="10115",
)
LATER = 301  # past recent_auth_seconds (300)


async def signed_in(ctx: Context, login: str = "ada") -> SignedIn:
    async with ctx.transaction() as tx:
        return await sign_in_with_password(
            tx, login=login, password=PASSWORD, kind="device", device_name="TV"
        )


async def update(
    ctx: Context, me: SignedIn, password: str | None = None, **changes: str
) -> ProfileUpdate:
    return await update_profile(
        ctx,
        session=me.session,
        account=await account(ctx, me.account.id),
        changes=ProfileChanges(**changes),
        password=password,
    )


async def account(ctx: Context, account_id: str) -> Account:
    async with ctx.transaction() as tx:
        found = await tx.accounts.get(account_id)
    assert found is not None
    return found


async def kinds(db: Database) -> list[str]:
    async with db.transaction() as stores:
        return [e.kind for e in await stores.audit.list(limit=200)]


async def test_name_and_postal_code_change_together(ctx: Context, db: Database) -> None:
    me = await signed_in_user(ctx)
    done = await update(ctx, me, name="  Countess Ada ", postal_code=" SW1A 1AA ")
    assert (done.account.name, done.account.postal_code, done.email_change) == (
        "Countess Ada",
        "SW1A 1AA",
        None,
    )
    removed = await update(ctx, me, postal_code="")
    assert removed.account.postal_code is None
    async with db.transaction() as stores:
        details = [
            e.detail for e in await stores.audit.list() if e.kind == "account.profile_updated"
        ]
    assert details == ["fields=postal_code via=form", "fields=name,postal_code via=form"]


async def signed_in_user(ctx: Context) -> SignedIn:
    await make_user(ctx, verified=True)
    return await signed_in(ctx)


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"name": "  "}, {"name"}),
        ({"name": "x" * 101, "postal_code": "1" * 33}, {"name", "postal_code"}),
        ({"postal_code": "10\x00115"}, {"postal_code"}),
        ({"name": "Ada", "email": "not an address"}, {"email"}),
        ({"name": "A\u202eda", "postal_code": "ok", "email": ""}, {"name", "email"}),
    ],
)
async def test_bad_fields_are_named_and_nothing_is_written(
    ctx: Context, db: Database, changes: dict[str, str], fields: set[str]
) -> None:
    me = await signed_in_user(ctx)
    with pytest.raises(errors.ValidationFailed) as refused:
        await update(ctx, me, **changes)
    assert set(refused.value.errors) == fields
    assert await account(ctx, me.account.id) == me.account
    assert "account.profile_updated" not in await kinds(db)


async def test_nothing_to_change_is_refused(ctx: Context) -> None:
    me = await signed_in_user(ctx)
    with pytest.raises(errors.ValidationFailed):
        await update(ctx, me)


async def test_an_email_change_needs_a_recent_sign_in_or_the_password(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    me = await signed_in_user(ctx)
    clock.advance(LATER)
    # Not recent, no password: refused, and the name in the same request is not written.
    with pytest.raises(errors.ReauthenticationRequired):
        await update(ctx, me, name="Mallory", email="mallory@example.com")
    with pytest.raises(errors.InvalidCredentials):
        await update(ctx, me, "wrong password", name="Mallory", email="mallory@example.com")
    assert (await account(ctx, me.account.id)).name == "Ada Lovelace"
    assert await queued_mail(db, "mallory@example.com") == []
    assert "signin.failed" in await kinds(db)  # the wrong password left its trail
    done = await update(ctx, me, PASSWORD, name="Ada L.", email="ada@new.example")
    assert done.email_change is not None
    assert done.email_change.email == "ada@new.example"
    assert (done.account.name, done.account.email) == ("Ada L.", "ada@example.com")
    async with db.transaction() as stores:
        session = await stores.sessions.get(me.session.id)
    assert session is not None
    assert session.authenticated_at == clock.now()  # proved again: the token is kept


async def test_within_a_recent_sign_in_no_password_is_asked(ctx: Context, db: Database) -> None:
    me = await signed_in_user(ctx)
    done = await update(ctx, me, email="ada@new.example")
    assert done.email_change is not None
    assert [m.kind for m in await queued_mail(db, "ada@new.example")] == ["verify_email"]


async def test_the_own_address_needs_no_proof(
    ctx: Context, db: Database, clock: FixedClock
) -> None:
    await make_user(ctx)  # unverified
    me = await signed_in(ctx)
    clock.advance(LATER)
    done = await update(ctx, me, email="ADA@example.com", name="Ada")
    assert done.email_change is not None  # a fresh verification mail to it
    assert done.account.name == "Ada"


async def amazon_account(ctx: Context) -> SignedInWithAmazon:
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx, AMAZON, kind="device", starter=amazon.Device()
        )
    assert isinstance(outcome, SignedInWithAmazon)
    return outcome


async def test_an_account_without_a_password_signs_in_again_to_change_its_email(
    ctx: Context, clock: FixedClock
) -> None:
    me = (await amazon_account(ctx)).signed_in
    clock.advance(LATER)
    with pytest.raises(errors.ReauthenticationRequired) as refused:
        await update(ctx, me, email="ada@new.example")
    assert "sign in with Amazon again" in refused.value.detail
    # A password it does not have is no proof either.
    with pytest.raises(errors.ReauthenticationRequired):
        await update(ctx, me, "any password", email="x@new.example")


async def test_use_this_copies_what_amazon_last_sent(ctx: Context, db: Database) -> None:
    me = await signed_in_user(ctx)
    async with ctx.transaction() as tx:
        with pytest.raises(errors.NotFound):  # nothing linked yet
            await use_amazon_value(tx, me.account, "name")
        await amazon.attach_amazon(
            tx, AMAZON, session=me.session, account=me.account, password=None
        )
    kept = await account(ctx, me.account.id)
    assert (kept.name, kept.postal_code) == ("Ada Lovelace", "10115")  # fill_empty, always
    async with ctx.transaction() as tx:
        copied = await use_amazon_value(tx, kept, "name")
    assert copied.name == "Ada King"
    async with db.transaction() as stores:
        assert "fields=name via=amazon" in [e.detail for e in await stores.audit.list()]
