"""Password recovery (flows/recovery.py): who gets a message, what a reset changes, and
what it refuses. Runs on SQLite, and on PostgreSQL with LWA_TEST_DATABASE=postgres."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account
from lwa_accounts.errors import (
    EmailLinkExpired,
    EmailLinkInvalid,
    EmailLinkUsed,
    InvalidCredentials,
    TooManyAttempts,
    ValidationFailed,
    WrongEmailCode,
)
from lwa_accounts.flows import email_codes
from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.flows.phases import password_sign_in
from lwa_accounts.flows.recovery import (
    CODE_REFUSED,
    open_reset_link,
    request_reset,
    reset_with_code,
    reset_with_link,
)
from lwa_accounts.store.db import Database
from lwa_accounts.testing.factories import amazon_profile, make_account, make_link
from lwa_accounts.testing.mail import code_in, queued_mail
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import PASSWORD, fast_settings, make_user
from tests.flows.recovery_helpers import last_reset_mail, reset_mails, token_in, verify_email

NEW_PASSWORD = "marmalade-otter-88"


@pytest.fixture
async def ada(ctx: Context) -> Account:
    return await verify_email(ctx, await make_user(ctx))


async def _audit(db: Database, ctx: Context, kind: str) -> list[str]:
    """The details of the ``kind`` events, oldest first."""
    async with db.transaction() as stores:
        found = list(reversed(await stores.audit.list(limit=1000)))
    return [event.detail or "" for event in found if event.kind == kind]


async def _sign_in(ctx: Context, password: str, login: str = "ada") -> str:
    signed_in = await password_sign_in(
        ctx, login=login, password=password, kind="device", device_name="TV"
    )
    return signed_in.token


async def _live(ctx: Context, token: str) -> bool:
    async with ctx.transaction() as tx:
        return await tx.sessions.resolve(token, touch=False) is not None


# ---- asking -------------------------------------------------------------------------------


async def test_a_verified_account_gets_a_link_and_a_code_at_its_address(
    ctx: Context, db: Database, ada: Account
) -> None:
    assert await request_reset(ctx, login="ADA@example.com") is True
    mail = await last_reset_mail(db, "ada@example.com")
    assert "ada" in mail.text
    assert "/reset-password/code" in mail.text
    assert code_in(mail)
    assert f"/reset-password?token={token_in(mail)}" in mail.html
    assert mail.subject == "Reset the password of your lwa-accounts account"
    assert await _audit(db, ctx, "password.reset_requested") == ["outcome=sent"]


@pytest.mark.parametrize("case", ["unknown", "unverified", "no_email", "disabled"])
async def test_no_message_without_a_verified_address_and_the_ask_still_counts(
    ctx: Context, db: Database, case: str
) -> None:
    login = "nobody"
    if case != "unknown":
        async with ctx.transaction() as tx:
            account = await make_account(
                tx.accounts,
                username="bob",
                email=None if case == "no_email" else "bob@example.com",
                password_hash="x",
                email_verified=case == "disabled",
            )
            if case == "disabled":
                await tx.accounts.set_disabled(account.id, True)
        login = "bob"
    assert await request_reset(ctx, login=login) is False
    assert await queued_mail(db) == []
    expected = {
        "unknown": "no_match",
        "unverified": "no_verified_email",
        "no_email": "no_verified_email",
        "disabled": "disabled",
    }[case]
    assert await _audit(db, ctx, "password.reset_requested") == [f"outcome={expected}"]


async def test_the_ip_budget_counts_unknown_logins_too(
    ctx: Context, db: Database, deps: Deps, ada: Account
) -> None:
    for n in range(20):  # email_limit_per_ip: 20/hour
        await request_reset(ctx, login=f"nobody{n}")
    assert await request_reset(ctx, login="ada") is False  # the IP's budget is spent
    assert await reset_mails(db, "ada@example.com") == []
    other_ip = dataclasses.replace(ctx, client=ClientInfo(ip="203.0.113.9"))
    assert await request_reset(other_ip, login="ada") is True


async def test_mail_bombing_one_account_stops_at_its_budget(
    ctx: Context, db: Database, ada: Account
) -> None:
    sent = []
    for n in range(12):
        from_ip = dataclasses.replace(ctx, client=ClientInfo(ip=f"203.0.113.{n}"))
        sent.append(await request_reset(from_ip, login="ada"))
    # email_limit_per_account: 5/hour, from any IP; the registration's verification mail
    # was the first.
    assert sent.count(True) == 4
    assert len(await reset_mails(db, "ada@example.com")) == 4
    assert (await _audit(db, ctx, "password.reset_requested")).count("outcome=throttled") == 8


# ---- resetting by link --------------------------------------------------------------------


async def test_a_reset_sets_the_password_ends_every_session_voids_other_proofs_and_tells(
    ctx: Context, db: Database, ada: Account
) -> None:
    tokens = [await _sign_in(ctx, PASSWORD) for _ in range(3)]
    async with ctx.transaction() as tx:
        pending_change = await email_codes.issue(
            tx, purpose="verify_email", account=ada, email="ada.new@example.com"
        )
    await request_reset(ctx, login="ada")
    token = token_in(await last_reset_mail(db, "ada@example.com"))
    async with ctx.transaction() as tx:
        assert (await open_reset_link(tx, token)).username == "ada"  # peeking spends nothing

    done = await reset_with_link(ctx, token=token, new_password=NEW_PASSWORD)

    assert done.sessions_ended == 3
    assert [await _live(ctx, t) for t in tokens] == [False, False, False]
    with pytest.raises(InvalidCredentials):
        await _sign_in(ctx, PASSWORD)
    assert await _live(ctx, await _sign_in(ctx, NEW_PASSWORD))
    with pytest.raises(EmailLinkUsed):  # the pending e-mail change is cancelled
        async with ctx.transaction() as tx:
            await email_codes.redeem_link(tx, "verify_email", pending_change.link_token)
    with pytest.raises(EmailLinkUsed):
        await reset_with_link(ctx, token=token, new_password="another-fine-phrase")
    [detail] = await _audit(db, ctx, "password.reset")
    assert detail.startswith("by=link sessions_ended=3 proofs_voided=")
    assert detail.endswith("amazon=none")
    kinds = [mail.kind for mail in await queued_mail(db, "ada@example.com")]
    assert kinds.count("notice_password_reset") == 1  # the address is told, once


async def test_a_reset_signs_nobody_in(ctx: Context, db: Database, ada: Account) -> None:
    await request_reset(ctx, login="ada")
    token = token_in(await last_reset_mail(db, "ada@example.com"))
    await reset_with_link(ctx, token=token, new_password=NEW_PASSWORD)
    async with ctx.transaction() as tx:
        assert await tx.sessions.list_for_account(ada.id) == []


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 8"), ("password123", "too common"), ("x" * 1025, "at most")],
)
async def test_a_weak_password_is_422_naming_the_field_and_nothing_is_written(
    ctx: Context, db: Database, ada: Account, password: str, message: str
) -> None:
    session = await _sign_in(ctx, PASSWORD)
    await request_reset(ctx, login="ada")
    mail = await last_reset_mail(db, "ada@example.com")
    with pytest.raises(ValidationFailed) as refused:
        await reset_with_link(ctx, token=token_in(mail), new_password=password)
    assert list(refused.value.errors) == ["new_password"]
    assert message in refused.value.errors["new_password"]
    with pytest.raises(ValidationFailed):
        await reset_with_code(ctx, login="ada", code=code_in(mail), new_password=password)
    assert await _live(ctx, session)
    assert await _audit(db, ctx, "password.reset") == []
    assert "notice_password_reset" not in [m.kind for m in await queued_mail(db)]
    await reset_with_link(ctx, token=token_in(mail), new_password=NEW_PASSWORD)  # still live


async def test_an_expired_link_says_so(
    ctx: Context, db: Database, ada: Account, clock: FixedClock
) -> None:
    await request_reset(ctx, login="ada")
    token = token_in(await last_reset_mail(db, "ada@example.com"))
    clock.advance(30 * 60 + 1)
    with pytest.raises(EmailLinkExpired):
        await reset_with_link(ctx, token=token, new_password=NEW_PASSWORD)
    assert await _audit(db, ctx, "password.reset_refused") == ["by=link reason=email_link_expired"]


async def test_a_newer_message_replaces_the_older_link(
    ctx: Context, db: Database, ada: Account
) -> None:
    await request_reset(ctx, login="ada")
    first = token_in(await last_reset_mail(db, "ada@example.com"))
    await request_reset(ctx, login="ada")
    second = token_in(await last_reset_mail(db, "ada@example.com"))
    with pytest.raises(EmailLinkUsed):
        await reset_with_link(ctx, token=first, new_password=NEW_PASSWORD)
    await reset_with_link(ctx, token=second, new_password=NEW_PASSWORD)


async def test_a_link_sent_before_the_address_changed_is_refused(
    ctx: Context, db: Database, ada: Account
) -> None:
    await request_reset(ctx, login="ada")
    token = token_in(await last_reset_mail(db, "ada@example.com"))
    async with ctx.transaction() as tx:
        await tx.accounts.update(ada.id, email="ada@elsewhere.example")
    with pytest.raises(EmailLinkInvalid):
        await reset_with_link(ctx, token=token, new_password=NEW_PASSWORD)
    await _sign_in(ctx, PASSWORD)  # unchanged


async def test_a_link_sent_before_the_account_was_disabled_is_refused(
    ctx: Context, db: Database, ada: Account
) -> None:
    await request_reset(ctx, login="ada")
    mail = await last_reset_mail(db, "ada@example.com")
    async with ctx.transaction() as tx:
        await tx.accounts.set_disabled(ada.id, True)
    with pytest.raises(EmailLinkInvalid):
        await reset_with_link(ctx, token=token_in(mail), new_password=NEW_PASSWORD)
    with pytest.raises(WrongEmailCode):
        await reset_with_code(ctx, login="ada", code=code_in(mail), new_password=NEW_PASSWORD)
    async with ctx.transaction() as tx:
        assert await tx.accounts.set_disabled(ada.id, False)
    await _sign_in(ctx, PASSWORD)  # the password never changed


async def test_an_amazon_created_account_sets_its_first_password(
    ctx: Context, db: Database
) -> None:
    async with ctx.transaction() as tx:
        account = await make_account(
            tx.accounts, username="grace", email="grace@example.com", email_verified=True
        )
    assert not account.has_password
    await request_reset(ctx, login="grace@example.com")
    token = token_in(await last_reset_mail(db, "grace@example.com"))
    await reset_with_link(ctx, token=token, new_password=NEW_PASSWORD)
    assert await _live(ctx, await _sign_in(ctx, NEW_PASSWORD, login="grace"))


# ---- the linked Amazon account ------------------------------------------------------------


@pytest.fixture
async def linked(ctx: Context, ada: Account) -> Account:
    async with ctx.transaction() as tx:
        profile = amazon_profile(name="Mallory", email="mallory@example.net")
        await make_link(tx.identities, ada, profile)
    return ada


async def test_a_linked_account_must_say_whether_to_keep_the_amazon_link(
    ctx: Context, db: Database, linked: Account
) -> None:
    await request_reset(ctx, login="ada")
    mail = await last_reset_mail(db, "ada@example.com")
    async with ctx.transaction() as tx:
        target = await open_reset_link(tx, token_in(mail))
    assert target.amazon is not None
    assert target.amazon.email == "mallory@example.net"
    for attempt in (
        reset_with_link(ctx, token=token_in(mail), new_password=NEW_PASSWORD),
        reset_with_code(ctx, login="ada", code=code_in(mail), new_password=NEW_PASSWORD),
    ):
        with pytest.raises(ValidationFailed) as refused:
            await attempt
        assert "Mallory (mallory@example.net)" in refused.value.errors["amazon_link"]
    with pytest.raises(ValidationFailed) as refused:
        await reset_with_link(
            ctx, token=token_in(mail), new_password=NEW_PASSWORD, amazon_link="maybe"
        )
    assert list(refused.value.errors) == ["amazon_link"]
    await _sign_in(ctx, PASSWORD)  # nothing written; the link and the code are still live
    await reset_with_link(
        ctx, token=token_in(mail), new_password=NEW_PASSWORD, amazon_link="remove"
    )
    async with ctx.transaction() as tx:
        assert await tx.identities.get_for_account(linked.id) is None
    assert await _audit(db, ctx, "amazon.unlinked") == ["reason=password_reset"]


async def test_keeping_the_amazon_link(ctx: Context, db: Database, linked: Account) -> None:
    await request_reset(ctx, login="ada")
    mail = await last_reset_mail(db, "ada@example.com")
    await reset_with_code(
        ctx, login="ada", code=code_in(mail), new_password=NEW_PASSWORD, amazon_link="keep"
    )
    async with ctx.transaction() as tx:
        assert await tx.identities.get_for_account(linked.id) is not None
    [detail] = await _audit(db, ctx, "password.reset")
    assert detail.startswith("by=code")
    assert detail.endswith("amazon=kept")


# ---- resetting by code --------------------------------------------------------------------


async def test_the_code_resets_once(ctx: Context, db: Database, ada: Account) -> None:
    await request_reset(ctx, login="ada")
    mail = await last_reset_mail(db, "ada@example.com")
    code = code_in(mail)
    await reset_with_code(
        ctx, login="ada@example.com", code=f"{code[:3]} {code[3:]}", new_password=NEW_PASSWORD
    )
    with pytest.raises(WrongEmailCode):
        await reset_with_code(ctx, login="ada", code=code, new_password="another-fine-phrase")
    with pytest.raises(EmailLinkUsed):  # the message's link went with it
        await reset_with_link(ctx, token=token_in(mail), new_password="another-fine-phrase")
    await _sign_in(ctx, NEW_PASSWORD)


async def test_every_refused_code_gets_the_same_answer(
    ctx: Context, db: Database, ada: Account
) -> None:
    async with ctx.transaction() as tx:
        await make_account(tx.accounts, username="bob", email="bob@example.com", password_hash="x")
    await request_reset(ctx, login="ada")
    real = code_in(await last_reset_mail(db, "ada@example.com"))
    wrong = "000000" if real != "000000" else "111111"
    answers = []
    for login, code in [("ada", wrong), ("nobody", real), ("bob", real), ("ada", "abc")]:
        with pytest.raises(WrongEmailCode) as refused:
            await reset_with_code(ctx, login=login, code=code, new_password=NEW_PASSWORD)
        error = refused.value
        answers.append((error.status, error.code, error.detail, error.extra))
    assert len(set(map(repr, answers))) == 1
    assert answers[0][2] == CODE_REFUSED
    assert answers[0][3] == {"errors": {"code": CODE_REFUSED}}  # no count: only real codes have one


async def test_a_login_gets_five_guesses_a_day_however_many_messages_it_asks_for(
    ctx: Context, db: Database, ada: Account, clock: FixedClock
) -> None:
    await request_reset(ctx, login="ada")
    code = code_in(await last_reset_mail(db, "ada@example.com"))
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(WrongEmailCode):
            await reset_with_code(ctx, login="ada", code=wrong, new_password=NEW_PASSWORD)
    await request_reset(ctx, login="ada")  # a fresh message brings no fresh guesses
    mail = await last_reset_mail(db, "ada@example.com")
    with pytest.raises(WrongEmailCode):
        await reset_with_code(ctx, login="ada", code=code_in(mail), new_password=NEW_PASSWORD)
    assert (await _audit(db, ctx, "password.reset_refused"))[-1] == "by=code reason=login_budget"
    await reset_with_link(ctx, token=token_in(mail), new_password=NEW_PASSWORD)  # the link works


# ---- the password budget ------------------------------------------------------------------


@pytest.fixture
async def strict_ctx(tmp_path: Path, ctx: Context) -> AsyncIterator[Context]:
    """Four guesses per account from every IP (the account-wide tier), per IP ten."""
    throttle = Throttle(fast_settings(tmp_path, password_limit_per_account="4/15minutes"))
    yield dataclasses.replace(ctx, deps=dataclasses.replace(ctx.deps, throttle=throttle))
    await throttle.aclose()


async def test_a_reset_forgives_the_accounts_password_budget_not_the_guessers_ip(
    strict_ctx: Context, db: Database, ada: Account
) -> None:
    for n in range(4):  # a botnet spends the account-wide budget
        guesser = dataclasses.replace(strict_ctx, client=ClientInfo(ip=f"192.0.2.{n}"))
        with pytest.raises(InvalidCredentials):
            await _sign_in(guesser, f"guess-number-{n}")
    with pytest.raises(TooManyAttempts):
        await _sign_in(strict_ctx, PASSWORD)  # the owner is stuck behind it
    await request_reset(strict_ctx, login="ada")
    token = token_in(await last_reset_mail(db, "ada@example.com"))
    await reset_with_link(strict_ctx, token=token, new_password=NEW_PASSWORD)
    assert await _live(strict_ctx, await _sign_in(strict_ctx, NEW_PASSWORD))
    # The guessers' own addresses are still counted: ten per IP, one spent each.
    guesser = dataclasses.replace(strict_ctx, client=ClientInfo(ip="192.0.2.0"))
    for n in range(9):
        with pytest.raises((InvalidCredentials, TooManyAttempts)):
            await _sign_in(guesser, f"more-guesses-{n}", login=f"someone{n}")
    with pytest.raises(TooManyAttempts):
        await _sign_in(guesser, "one-more", login="someone-else")
