"""Notices by mail (flows/notices.py): each wired change queues exactly one notice to the
right address in its own transaction, a rollback queues none, and each mail says what,
when and from where, with a "This wasn't me" link and no IP address."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from lwa_accounts import errors
from lwa_accounts.core.models import Account, AmazonProfile
from lwa_accounts.flows import admin, amazon, new_devices
from lwa_accounts.flows.accounts import sign_in_with_password
from lwa_accounts.flows.context import ClientInfo, Context, Tx
from lwa_accounts.flows.credentials import change_password, rotate_session
from lwa_accounts.flows.notices import NOTICES, Notice, notify
from lwa_accounts.flows.sessions import SignedIn, start_session
from lwa_accounts.store.db import Database
from lwa_accounts.testing.factories import amazon_profile
from lwa_accounts.testing.mail import QueuedMail, link_in
from lwa_accounts.testing.mail import queued_mail as all_queued_mail
from tests.flows.conftest import CLIENT, PASSWORD, context_of, make_user

FIREFOX = ClientInfo(
    ip="198.51.100.7",
    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
)
ADA_AMAZON = AmazonProfile(
    user_id="amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",
    client_id="amzn1.application-oa2-client.web",
    name="Ada Lovelace",
    email="ada@example.com",
)


async def queued_mail(db: Database, to: str | None = None) -> list[QueuedMail]:
    """The notices queued: the verification mail every registration sends is not one."""
    return [mail for mail in await all_queued_mail(db, to) if mail.kind != "verify_email"]


async def kinds(db: Database, to: str) -> list[str]:
    return [mail.kind for mail in await queued_mail(db, to)]


async def verified(ctx: Context, username: str = "ada") -> Account:
    account = await make_user(ctx, username=username, email=f"{username}@example.com")
    async with ctx.transaction() as tx:
        return await tx.accounts.update(account.id, email_verified=True)


async def sign_in(
    ctx: Context, login: str = "ada", *, kind: str = "browser", device_name: str | None = None
) -> SignedIn:
    async with ctx.transaction() as tx:
        return await sign_in_with_password(
            tx,
            login=login,
            password=PASSWORD,
            kind=kind,  # type: ignore[arg-type]
            device_name=device_name,
        )


# ---- what a notice says ----------------------------------------------------------------


@pytest.mark.parametrize("notice", NOTICES)
async def test_each_notice_says_what_when_from_where_and_links_not_me(
    db: Database, ctx: Context, notice: Notice
) -> None:
    ada = await verified(ctx)
    values = {"new_email": "nora.new@example.org"} if notice == "email_changed" else {}
    async with context_of(db, ctx.deps, FIREFOX).transaction() as tx:
        await notify(tx, ada, notice, **values)
    [mail] = await queued_mail(db, "ada@example.com")
    assert mail.kind == f"notice_{notice}"
    assert mail.subject
    assert "\n" not in mail.subject
    for body in (mail.text, mail.html):
        assert "ada" in body
        assert "01 March 2026 at 09:00 UTC" in body
        assert "Firefox on Linux" in body
        assert "198.51.100.7" not in body  # no IP address in a mail
        assert "/not-me?token=" in body
        assert "/forgot" in body
    assert link_in(mail, "/not-me?token=").startswith(ctx.settings.public_url.rstrip("/"))
    if notice == "email_changed":
        assert "n•••@example.org" in mail.text
        assert "nora.new" not in mail.text + mail.html


async def test_a_device_name_is_escaped_and_a_user_agent_is_never_copied(
    db: Database, ctx: Context
) -> None:
    ada = await verified(ctx)
    odd = ClientInfo(ip="203.0.113.9", user_agent="<script>alert(1)</script> call +1 555")
    await sign_in(context_of(db, ctx.deps, odd), kind="device", device_name="<b>Den</b> TV")
    [mail] = await queued_mail(db, ada.email)
    assert mail.kind == "notice_new_device"
    assert 'a device named "<b>Den</b> TV"' in mail.text
    assert "&lt;b&gt;Den&lt;/b&gt; TV" in mail.html
    assert "<b>Den</b>" not in mail.html
    assert "script" not in mail.text + mail.html
    assert "555" not in mail.text


async def test_no_address_no_notice_and_new_device_needs_a_verified_one(
    db: Database, ctx: Context
) -> None:
    nobody = await make_user(ctx, username="nobody", email=None)
    async with ctx.transaction() as tx:
        await notify(tx, nobody, "password_changed")
    await make_user(ctx)  # ada@example.com, never verified
    await sign_in(ctx)  # a browser it never saw: but the address is unverified
    assert await queued_mail(db) == []
    async with ctx.transaction() as tx:
        ada = await tx.accounts.get_by_username("ada")
        assert ada is not None
        await notify(tx, ada, "password_changed")  # a change: told even so
    assert await kinds(db, "ada@example.com") == ["notice_password_changed"]


async def test_notices_given_to_another_address_and_unknown_ones_refused(ctx: Context) -> None:
    ada = await make_user(ctx)
    async with ctx.transaction() as tx:
        await notify(tx, ada, "email_changed", to="old@example.com", new_email="ada@example.com")
        await notify(tx, ada, "password_reset")
        with pytest.raises(TypeError):
            await notify(tx, ada, "email_changed")  # needs new_email
        with pytest.raises(ValueError, match="unknown notice"):
            await notify(tx, ada, "account_deleted")  # type: ignore[arg-type]
    assert await kinds(ctx.database, "old@example.com") == ["notice_email_changed"]  # type: ignore[arg-type]
    assert await kinds(ctx.database, "ada@example.com") == ["notice_password_reset"]  # type: ignore[arg-type]


async def test_a_rolled_back_transaction_queues_no_notice(db: Database, ctx: Context) -> None:
    ada = await make_user(ctx)

    async def notify_then_fail() -> None:
        async with ctx.transaction() as tx:
            await notify(tx, ada, "amazon_linked")
            raise RuntimeError("refused after the notice")

    with pytest.raises(RuntimeError):
        await notify_then_fail()
    assert await queued_mail(db) == []


# ---- password change -------------------------------------------------------------------


async def test_a_password_change_sends_one_notice_and_a_refused_one_none(
    db: Database, ctx: Context
) -> None:
    await make_user(ctx)
    me = await sign_in(ctx)
    with pytest.raises(errors.InvalidCredentials):
        async with ctx.transaction() as tx:
            await change_password(
                tx,
                session=me.session,
                account=me.account,
                current_password="not the password",
                new_password="a brand new passphrase 7",
            )
    assert await queued_mail(db) == []
    async with ctx.transaction() as tx:
        await change_password(
            tx,
            session=me.session,
            account=me.account,
            current_password=PASSWORD,
            new_password="a brand new passphrase 7",
        )
    assert await kinds(db, "ada@example.com") == ["notice_password_changed"]


# ---- Amazon linked and unlinked --------------------------------------------------------


async def attach(ctx: Context, me: SignedIn, profile: AmazonProfile = ADA_AMAZON) -> None:
    async with ctx.transaction() as tx:
        await amazon.attach_amazon(
            tx, profile, session=me.session, account=me.account, password=None
        )


async def detach(ctx: Context, me: SignedIn) -> None:
    async with ctx.transaction() as tx:
        await amazon.detach_amazon(tx, session=me.session, account=me.account, password=None)


async def test_attach_and_detach_send_one_notice_each(db: Database, ctx: Context) -> None:
    await make_user(ctx)
    me = await sign_in(ctx, kind="device", device_name="Living room TV")
    await attach(ctx, me)
    assert await kinds(db, "ada@example.com") == ["notice_amazon_linked"]
    await detach(ctx, me)
    assert await kinds(db, "ada@example.com") == ["notice_amazon_linked", "notice_amazon_unlinked"]
    linked, unlinked = await queued_mail(db, "ada@example.com")
    assert "support team" not in unlinked.text
    # From the session that did it: the TV by its name.
    assert 'From:    a device named "Living room TV"' in linked.text
    assert 'From:    a device named "Living room TV"' in unlinked.text


async def test_refused_attach_and_detach_send_nothing(db: Database, ctx: Context) -> None:
    await make_user(ctx)
    await make_user(ctx, username="grace", email="grace@example.com")
    ada, grace = await sign_in(ctx), await sign_in(ctx, "grace")
    await attach(ctx, ada)
    with pytest.raises(errors.AmazonLinkedElsewhere):
        await attach(ctx, grace)  # ada's Amazon identity
    with pytest.raises(errors.NotFound):
        await detach(ctx, grace)  # nothing linked
    assert await queued_mail(db, "grace@example.com") == []


async def test_detach_of_the_last_way_in_is_refused_and_sends_nothing(
    db: Database, ctx: Context
) -> None:
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx,
            amazon_profile(email="only@example.com"),
            kind="browser",
            device_name=None,
            starter=amazon.Browser("binding"),
        )
    assert isinstance(outcome, amazon.SignedInWithAmazon)
    assert await queued_mail(db) == []  # a new account: no notice of its own creation
    with pytest.raises(errors.LastSignInMethod):
        await detach(ctx, outcome.signed_in)
    assert await queued_mail(db) == []


async def test_linking_at_the_link_step_sends_one_notice(db: Database, ctx: Context) -> None:
    await make_user(ctx, verified=True)  # only a confirmed address is a link step's target

    async def start() -> amazon.LinkRequired:
        async with ctx.transaction() as tx:
            outcome = await amazon.sign_in_with_profile(
                tx, ADA_AMAZON, kind="device", device_name="TV", starter=amazon.Device()
            )
        assert isinstance(outcome, amazon.LinkRequired)
        return outcome

    flow = await start()
    with pytest.raises(errors.InvalidCredentials):
        async with ctx.transaction() as tx:
            await amazon.confirm_link(tx, flow.flow_id, "not the password", amazon.Device())
    assert await queued_mail(db) == []
    async with ctx.transaction() as tx:
        await amazon.confirm_link(tx, flow.flow_id, PASSWORD, amazon.Device())
    # The link, and the new device session that came with it (a confirmed address: since
    # issue 13 only such an account has a link step).
    assert await kinds(db, "ada@example.com") == ["notice_amazon_linked", "notice_new_device"]


async def test_an_operator_unlinking_amazon_sends_one_notice(db: Database, ctx: Context) -> None:
    await make_user(ctx)
    me = await sign_in(ctx)
    await attach(ctx, me)
    with pytest.raises(errors.NotFound):
        async with ctx.transaction() as tx:
            await admin.unlink_amazon(tx, me.account.id, operator="sam", amazon_user_id="other")
    assert await kinds(db, "ada@example.com") == ["notice_amazon_linked"]
    async with ctx.transaction() as tx:
        await admin.unlink_amazon(tx, me.account.id, operator="sam")
    mails = await queued_mail(db, "ada@example.com")
    assert [m.kind for m in mails] == ["notice_amazon_linked", "notice_amazon_unlinked"]
    assert "support team" in mails[1].text


# ---- a new device ----------------------------------------------------------------------


async def test_a_browser_is_new_once_then_known_by_its_memory(db: Database, ctx: Context) -> None:
    ada = await verified(ctx)
    first = await sign_in(ctx)
    assert first.browser_memory is not None
    assert await kinds(db, "ada@example.com") == ["notice_new_device"]
    remembered = replace(CLIENT, known_browser=first.browser_memory)
    again = await sign_in(context_of(db, ctx.deps, remembered))
    assert await kinds(db, "ada@example.com") == ["notice_new_device"]
    # A memory made for another account, an altered one or none at all: new again.
    await verified(ctx, "grace")
    grace = await sign_in(ctx, "grace")
    assert grace.browser_memory is not None
    for memory in (grace.browser_memory, first.browser_memory[:-3] + "AAA", None):
        await sign_in(context_of(db, ctx.deps, replace(CLIENT, known_browser=memory)))
    assert await kinds(db, "ada@example.com") == ["notice_new_device"] * 4
    # The browser that knows both accounts still knows ada after grace signed in there.
    both = replace(CLIENT, known_browser=again.browser_memory)
    shared = await sign_in(context_of(db, ctx.deps, both), "grace")
    await sign_in(context_of(db, ctx.deps, replace(CLIENT, known_browser=shared.browser_memory)))
    assert await kinds(db, "ada@example.com") == ["notice_new_device"] * 4
    assert ada.email_verified


async def test_a_device_is_new_unless_a_live_session_has_its_name_and_agent(
    db: Database, ctx: Context
) -> None:
    ada = await verified(ctx)
    tv = await sign_in(ctx, kind="device", device_name="Living room TV")
    assert tv.browser_memory is None
    await sign_in(ctx, kind="device", device_name="Living room TV")  # while the first lives
    assert await kinds(db, "ada@example.com") == ["notice_new_device"]
    await sign_in(ctx, kind="device", device_name="Bedroom TV")
    other_agent = replace(CLIENT, user_agent="another app")
    await sign_in(context_of(db, ctx.deps, other_agent), kind="device", device_name="Bedroom TV")
    async with ctx.transaction() as tx:
        await tx.sessions.revoke_all(ada.id)
    await sign_in(ctx, kind="device", device_name="Living room TV")  # none live now
    assert await kinds(db, "ada@example.com") == ["notice_new_device"] * 4
    [first, *_] = await queued_mail(db, "ada@example.com")
    assert 'a device named "Living room TV"' in first.text
    assert "with the account's password" in first.text


async def test_a_rotated_session_and_a_rolled_back_sign_in_send_nothing(
    db: Database, ctx: Context
) -> None:
    ada = await verified(ctx)
    me = await sign_in(ctx)
    assert len(await queued_mail(db)) == 1
    async with ctx.transaction() as tx:  # re-authentication in a browser without memory
        await rotate_session(tx, session=me.session, account=ada)

    async def sign_in_then_fail(tx: Tx) -> None:
        await start_session(tx, ada, kind="browser")
        raise RuntimeError("refused after the session")

    with pytest.raises(RuntimeError):
        async with ctx.transaction() as tx:
            await sign_in_then_fail(tx)
    assert len(await queued_mail(db)) == 1


def test_a_browser_memory_keeps_the_latest_accounts_and_expires(ctx: Context) -> None:
    settings, now = ctx.settings, ctx.now()
    memory: str | None = None
    for n in range(new_devices.KEEP + 2):
        memory = new_devices.remember(settings, memory, f"acc{n}", now=now)
    kept = new_devices.remembered(settings, memory, now=now)
    newest = [new_devices.account_digest(f"acc{n}") for n in range(new_devices.KEEP + 1, 1, -1)]
    assert kept == newest
    assert "acc" not in str(memory)  # digests, not the ids
    later = now + timedelta(seconds=new_devices.MAX_AGE + 1)
    assert new_devices.remembered(settings, memory, now=later) == []
