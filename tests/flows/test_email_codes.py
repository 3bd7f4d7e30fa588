"""One-time e-mail proofs: each refusal for its reason, single use under a race, wrong codes
counted through the rollback, and the e-mail budget taken before anything is written."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.email_codes import MAX_WRONG_CODES
from lwa_accounts.core.models import Account
from lwa_accounts.errors import (
    EmailCodeExhausted,
    EmailLinkExpired,
    EmailLinkForAnotherAccount,
    EmailLinkInvalid,
    EmailLinkRefused,
    EmailLinkUsed,
    TooManyAttempts,
    WrongEmailCode,
)
from lwa_accounts.flows.context import Context
from lwa_accounts.flows.email_codes import IssuedCode, issue, peek_link, redeem_code, redeem_link
from tests.flows.conftest import make_user


async def _issue(ctx: Context, account: Account, purpose: str = "verify_email") -> IssuedCode:
    async with ctx.transaction() as tx:
        return await issue(tx, purpose=purpose, account=account, email="ada@example.com")  # type: ignore[arg-type]


async def _redeem(ctx: Context, token: object, account_id: str | None = None) -> str:
    async with ctx.transaction() as tx:
        return (await redeem_link(tx, "verify_email", token, account_id=account_id)).account_id


async def _code(ctx: Context, account: Account, typed: str) -> str:
    async with ctx.transaction() as tx:
        proof = await redeem_code(tx, "verify_email", account_id=account.id, typed=typed)
        return proof.email


async def test_a_link_works_once(ctx: Context) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada)
    async with ctx.transaction() as tx:
        assert (await peek_link(tx, "verify_email", issued.link_token)).id == issued.code_id
    assert await _redeem(ctx, issued.link_token) == ada.id
    with pytest.raises(EmailLinkUsed):
        await _redeem(ctx, issued.link_token)


@pytest.mark.parametrize(
    "alter",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature altered
        lambda t: t[: len(t) // 2],  # cut short by a mail client
        lambda t: "",
        lambda t: "é" * 20,
        lambda t: None,
        lambda t: ["not", "a", "string"],
    ],
)
async def test_an_altered_link_is_invalid(ctx: Context, alter: object) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada)
    with pytest.raises(EmailLinkInvalid):
        await _redeem(ctx, alter(issued.link_token))  # type: ignore[operator]
    assert await _redeem(ctx, issued.link_token) == ada.id  # the real one still works


async def test_a_link_for_another_purpose_is_invalid(ctx: Context) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada, "reset_password")
    with pytest.raises(EmailLinkInvalid):
        await _redeem(ctx, issued.link_token)


async def test_an_expired_link_says_expired(ctx: Context, clock: FixedClock) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada)
    clock.advance(24 * 3600 + 1)
    with pytest.raises(EmailLinkExpired):
        await _redeem(ctx, issued.link_token)


async def test_a_link_for_another_signed_in_account_is_refused(ctx: Context) -> None:
    ada = await make_user(ctx)
    bob = await make_user(ctx, username="bob", email="bob@example.com")
    issued = await _issue(ctx, ada)
    with pytest.raises(EmailLinkForAnotherAccount):
        await _redeem(ctx, issued.link_token, account_id=bob.id)
    assert await _redeem(ctx, issued.link_token, account_id=ada.id) == ada.id


async def test_a_new_message_replaces_the_previous_one(ctx: Context) -> None:
    ada = await make_user(ctx)
    first = await _issue(ctx, ada)
    second = await _issue(ctx, ada)
    with pytest.raises(EmailLinkUsed):
        await _redeem(ctx, first.link_token)
    with pytest.raises(WrongEmailCode if first.code != second.code else EmailLinkUsed):
        await _code(ctx, ada, first.code)
    assert await _code(ctx, ada, second.code) == "ada@example.com"


async def test_the_code_works_once_and_tolerates_spaces(ctx: Context) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada)
    assert await _code(ctx, ada, f" {issued.code[:3]} {issued.code[3:]} ") == "ada@example.com"
    with pytest.raises(EmailLinkExpired):
        await _code(ctx, ada, issued.code)
    with pytest.raises(EmailLinkUsed):
        await _redeem(ctx, issued.link_token)


async def test_wrong_codes_are_counted_through_the_rollback_then_the_code_dies(
    ctx: Context,
) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada)
    wrong = "000000" if issued.code != "000000" else "111111"
    lefts = []
    for _ in range(MAX_WRONG_CODES - 1):
        with pytest.raises(WrongEmailCode) as refused:
            await _code(ctx, ada, wrong)
        lefts.append(refused.value.extra["attempts_left"])
    assert lefts == list(range(MAX_WRONG_CODES - 1, 0, -1))
    with pytest.raises(EmailCodeExhausted):
        await _code(ctx, ada, wrong)
    # Dead for the right code and for the link as well.
    with pytest.raises(EmailLinkExpired):
        await _code(ctx, ada, issued.code)
    with pytest.raises(EmailCodeExhausted):
        await _redeem(ctx, issued.link_token)


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "１２３４５６", "12\x0034"])
async def test_malformed_codes_are_wrong_codes(ctx: Context, typed: str) -> None:
    ada = await make_user(ctx)
    await _issue(ctx, ada)
    with pytest.raises(WrongEmailCode):
        await _code(ctx, ada, typed)


async def test_racing_redemptions_of_one_link_succeed_once(ctx: Context) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada)
    outcomes = await asyncio.gather(
        *(_redeem(ctx, issued.link_token) for _ in range(10)), return_exceptions=True
    )
    assert outcomes.count(ada.id) == 1
    assert all(isinstance(o, EmailLinkUsed) for o in outcomes if o != ada.id)


async def test_racing_wrong_codes_never_get_more_guesses_than_allowed(ctx: Context) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada)
    guesses = [f"{n:06d}" for n in range(20) if f"{n:06d}" != issued.code][:12]
    outcomes = await asyncio.gather(
        *(_code(ctx, ada, guess) for guess in guesses), return_exceptions=True
    )
    wrong = [o for o in outcomes if isinstance(o, WrongEmailCode)]
    assert len(wrong) <= MAX_WRONG_CODES - 1
    assert all(isinstance(o, EmailLinkRefused) for o in outcomes)
    with pytest.raises(EmailLinkRefused):
        await _code(ctx, ada, issued.code)


async def test_the_database_holds_no_usable_secret(ctx: Context) -> None:
    ada = await make_user(ctx)
    issued = await _issue(ctx, ada)
    async with ctx.transaction() as tx:
        stored = await tx.email_codes.get_for_update(issued.code_id)
    assert stored is not None
    assert issued.code not in (stored.code_digest, stored.link_digest)
    assert stored.code_digest != hashlib.sha256(issued.code.encode()).hexdigest()
    assert issued.link_token not in stored.link_digest


async def test_issuing_takes_from_the_mail_budget_before_writing(ctx: Context) -> None:
    ada = await make_user(ctx)  # its registration's verification mail is the first
    for _ in range(4):  # email_limit_per_account: 5/hour
        await _issue(ctx, ada)
    with pytest.raises(TooManyAttempts):
        await _issue(ctx, ada)
    async with ctx.transaction() as tx:
        live = await tx.email_codes.live(ada.id, "verify_email", now=tx.now())
    assert live is not None  # the fifth is still the live one: the refused one wrote nothing
