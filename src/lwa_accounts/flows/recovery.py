"""Password recovery: a link and a code sent to the account's verified address.

Asking (``request_reset``) never tells who has an account. The edges answer before the
look-up runs (``request_reset_quietly`` after the response), so the answer, its status
and its timing are the same for an account with a verified address, an unknown login, an
unverified or missing address, a disabled account and a spent e-mail budget. Only the
first gets a message, and only at its verified address (an unverified address is never
the target of an automatic decision); every ask counts against the e-mail budget of the
IP (``Throttle.count_email``) whether or not it matches, and a matching one against the
account's too, so neither an inbox nor the outbox can be flooded.

Resetting spends the proof once (a link: compare-and-set; a code: each guess reserved
first) and then, in one transaction: sets the password (validated like a registration's,
hashed with argon2 outside any transaction), ends every session of the account (a
planted session does not survive the owner's recovery), voids the account's other live
e-mail proofs (pending e-mail changes, account proofs, older resets), and, when an Amazon
identity is linked, keeps or removes it as the person chose: recovery shows which Amazon
account is linked and will not go on without an answer, so a link the owner never made
(the trojan identifier) does not survive it. After the commit the account's password
budget is forgiven (``Throttle.forgive_account``): the owner who proved the mailbox is
let through; the guessers' IPs stay slowed. The account's address is told
(``flows/notices.py``, the ``password_reset`` notice with its "This wasn't me" link).

A reset does not sign anyone in (OWASP Forgot Password Cheat Sheet): whoever holds the
link or code may choose the password, and then signs in with it like anyone else, which
also puts a fresh, normally-started session behind the new password.

The code path (``reset_with_code``: login + code + new password, for mail read on another
device) answers every refusal alike (wrong code, no code sent, expired, used, too many
guesses, unknown login): "wrong code" with no count, since "no code is waiting" would say
that the login has no reset pending, and a count only real codes have. Guesses are
limited per message (``MAX_WRONG_CODES``) and per login across messages (the same number
a day), so an attacker who asks for new messages again and again still gets only a few
guesses a day at a six-digit code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import quote

from lwa_accounts.core.email_codes import LIFETIMES, EmailCode, EmailCodePurpose
from lwa_accounts.core.models import Account, AmazonLink, AmazonProfile
from lwa_accounts.core.validation import Invalid, email_key, validate_password
from lwa_accounts.errors import (
    EmailCodeExhausted,
    EmailLinkExpired,
    EmailLinkInvalid,
    EmailLinkRefused,
    EmailLinkUsed,
    ServiceUnavailable,
    TooManyAttempts,
    ValidationFailed,
    WrongEmailCode,
)
from lwa_accounts.flows import email_codes
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.notices import notify
from lwa_accounts.flows.passwords import find_login, login_key

logger = logging.getLogger(__name__)

PURPOSE: EmailCodePurpose = "reset_password"
RESET_PATH = "/reset-password"
CODE_PATH = "/reset-password/code"
# A reset cancels what was waiting on the old state: e-mail changes, proofs, older resets.
VOIDED: tuple[EmailCodePurpose, ...] = ("verify_email", "reset_password", "prove_account")
# An account id no row has: an unknown login still costs the live-code look-up.
_NO_ACCOUNT = "acc_none"
CODE_REFUSED = (
    "That code is not right for this account, or it expired or was used. Check the "
    "newest e-mail, or ask for a new one."
)
AMAZON_CHOICE_FIELD = "amazon_link"

AmazonChoice = Literal["keep", "remove"]


@dataclass(frozen=True)
class ResetTarget:
    """What the new-password form shows whoever holds a live link."""

    username: str
    amazon: AmazonLink | None


@dataclass(frozen=True)
class PasswordReset:
    account_id: str
    sessions_ended: int
    amazon_removed: bool


def recoverable(account: Account | None) -> Account | None:
    """The account if a reset may be sent to it: enabled, with a verified address."""
    if account is None or account.disabled or not account.email or not account.email_verified:
        return None
    return account


# ---- asking ------------------------------------------------------------------------------


async def request_reset(ctx: Context, *, login: str) -> bool:
    """Send a reset message to the verified address of the account ``login`` names, if
    there is one and the budget allows. Raises nothing about the account (only an outage);
    the result (was a message queued) is for tests and never reaches the asker."""
    async with ctx.transaction() as tx:
        account = await find_login(tx, login)
        target = recoverable(account)
        try:
            if target is None:
                # The IP's budget counts every ask, matching or not.
                await tx.deps.throttle.count_email(login_key(account, login), tx.client.ip)
                outcome = _not_sent_because(account)
            else:
                await _send(tx, target)
                outcome = "sent"
        except TooManyAttempts:
            outcome = "throttled"
        tx.audit(
            Event.PASSWORD_RESET_REQUESTED,
            account_id=account.id if account else None,
            detail=f"outcome={outcome}",
        )
    return outcome == "sent"


async def request_reset_quietly(ctx: Context, *, login: str) -> None:
    """``request_reset`` for an edge that has already answered (nobody waits for an error
    any more): an outage or a bug is logged, never raised."""
    try:
        await request_reset(ctx, login=login)
    except ServiceUnavailable as error:
        logger.warning("a password reset request was dropped: %s", error.detail)
    except Exception:
        logger.exception("a password reset request failed after it was answered")


def _not_sent_because(account: Account | None) -> str:
    if account is None:
        return "no_match"
    if account.disabled:
        return "disabled"
    return "no_verified_email"


async def _send(tx: Tx, account: Account) -> None:
    # Imported when a message is rendered: importing a flow loads no template engine
    # (tests/flows/test_layering.py), only sending mail does.
    from lwa_accounts.mail.render import render_mail

    assert account.email is not None
    issued = await email_codes.issue(tx, purpose=PURPOSE, account=account, email=account.email)
    base = tx.settings.public_url.rstrip("/")
    await tx.send_mail(
        render_mail(
            "reset_password",
            to=account.email,
            settings=tx.settings,
            account_id=account.id,
            username=account.username,
            link=f"{base}{RESET_PATH}?token={quote(issued.link_token, safe='')}",
            code_url=f"{base}{CODE_PATH}",
            code_display=f"{issued.code[:3]} {issued.code[3:]}",
            minutes=int(LIFETIMES[PURPOSE].total_seconds() // 60),
        )
    )


# ---- the new-password form ---------------------------------------------------------------


async def open_reset_link(tx: Tx, token: object) -> ResetTarget:
    """What the link's form shows, without spending the link; raises its refusal."""
    proof = await _refused_audited(tx, "link", email_codes.peek_link(tx, PURPOSE, token))
    account = await _target_of(tx, proof)
    return ResetTarget(account.username, await tx.identities.get_for_account(account.id))


def describe_amazon(link: AmazonLink) -> str:
    """The linked Amazon account as Amazon last described it."""
    if link.name and link.email:
        return f"{link.name} ({link.email})"
    return link.name or link.email or "an Amazon account"


# ---- resetting ---------------------------------------------------------------------------


async def reset_with_link(
    ctx: Context, *, token: object, new_password: str, amazon_link: str | None = None
) -> PasswordReset:
    """Set a new password with the e-mailed link's token (see the module docstring)."""
    password, choice = _checked(ctx, new_password, amazon_link)
    async with ctx.transaction() as tx:
        proof = await _refused_audited(tx, "link", email_codes.peek_link(tx, PURPOSE, token))
        await _require_choice(tx, await _target_of(tx, proof), choice)
    new_hash = await ctx.deps.hasher.hash(password)  # no transaction open
    async with ctx.transaction() as tx:
        proof = await _refused_audited(tx, "link", email_codes.redeem_link(tx, PURPOSE, token))
        done = await _finish(tx, proof, new_hash, choice, by="link")
    await ctx.deps.throttle.forgive_account(done.account_id, ctx.client.ip)
    return done


async def reset_with_code(
    ctx: Context, *, login: str, code: str, new_password: str, amazon_link: str | None = None
) -> PasswordReset:
    """Set a new password with the login and the e-mailed code. The code is spent before
    argon2 runs (a wrong guess costs no hash); a choice still missing rolls it back."""
    password, choice = _checked(ctx, new_password, amazon_link)
    async with ctx.transaction() as tx:
        proof, account = await _redeem_code(tx, login, code)
        await _require_choice(tx, account, choice)
    new_hash = await ctx.deps.hasher.hash(password)
    async with ctx.transaction() as tx:
        done = await _finish(tx, proof, new_hash, choice, by="code")
    await ctx.deps.throttle.forgive_account(done.account_id, ctx.client.ip)
    return done


def _checked(
    ctx: Context, new_password: str, amazon_link: str | None
) -> tuple[str, AmazonChoice | None]:
    """Both fields checked before anything is read or written (422 naming each)."""
    errors: dict[str, str] = {}
    checked = validate_password(new_password, ctx.deps.common_passwords)
    if isinstance(checked, Invalid):
        errors["new_password"] = checked.message
    if amazon_link not in (None, "", "keep", "remove"):
        errors[AMAZON_CHOICE_FIELD] = "Choose “keep” or “remove”."
    if errors:
        raise ValidationFailed(errors=errors)
    choice = cast(AmazonChoice, amazon_link) if amazon_link else None
    return new_password, choice


async def _refused_audited(tx: Tx, by: str, step: Awaitable[EmailCode]) -> EmailCode:
    """The proof ``step`` finds, or its refusal raised with a kept audit event."""
    try:
        return await step
    except EmailLinkRefused as error:
        tx.audit(Event.PASSWORD_RESET_REFUSED, detail=f"by={by} reason={error.code}")
        raise


async def _target_of(tx: Tx, proof: EmailCode, *, lock: bool = False) -> Account:
    """The proof's account, if a reset may still go to it: enabled, and the address the
    message went to still its verified address (an address changed since is not proof)."""
    found = await (tx.accounts.lock if lock else tx.accounts.get)(proof.account_id)
    account = recoverable(found)
    if account is None or email_key(account.email or "") != email_key(proof.email):
        tx.audit(
            Event.PASSWORD_RESET_REFUSED,
            account_id=proof.account_id,
            detail="reason=account_changed",
        )
        raise EmailLinkInvalid(
            "This link no longer fits the account: its address changed or it was disabled."
        )
    return account


async def _redeem_code(tx: Tx, login: str, typed: str) -> tuple[EmailCode, Account]:
    """Spend the live reset code of the account ``login`` names if ``typed`` is it;
    every refusal is the one ``WrongEmailCode`` (see the module docstring)."""
    account = await find_login(tx, login)
    target = recoverable(account)
    reason = "wrong_code"
    try:
        # The login's own daily budget, before the code's: new messages bring no new
        # guesses. Unknown logins have one too, so their answers cost the same.
        guess = await tx.deps.throttle.reserve_email_code(f"reset:{login_key(account, login)}")
    except TooManyAttempts:
        guess, reason = None, "login_budget"
    if guess is not None:
        try:
            proof = await email_codes.redeem_code(
                tx, PURPOSE, account_id=target.id if target else _NO_ACCOUNT, typed=typed
            )
        except (WrongEmailCode, EmailCodeExhausted, EmailLinkExpired, EmailLinkUsed) as error:
            guess.failed()
            reason = "no_code" if isinstance(error, EmailLinkExpired) else error.code
        else:
            await guess.succeeded()
            assert target is not None  # a live code was found for it
            if email_key(target.email or "") == email_key(proof.email):
                return proof, target
            reason = "account_changed"
    tx.audit(
        Event.PASSWORD_RESET_REFUSED,
        account_id=account.id if account else None,
        detail=f"by=code reason={reason}",
    )
    raise WrongEmailCode(CODE_REFUSED, errors={"code": CODE_REFUSED})


async def _require_choice(
    tx: Tx, account: Account, choice: AmazonChoice | None
) -> AmazonLink | None:
    """The account's Amazon link; a reset of a linked account needs the person's answer
    (keep it or remove it), asked naming the Amazon account."""
    link = await tx.identities.get_for_account(account.id)
    if link is not None and choice is None:
        raise ValidationFailed(
            errors={
                AMAZON_CHOICE_FIELD: (
                    f"This account is linked to the Amazon account {describe_amazon(link)}. "
                    "Keep that link only if it is your own Amazon account; otherwise remove it."
                )
            }
        )
    return link


async def _finish(
    tx: Tx, proof: EmailCode, new_hash: str, choice: AmazonChoice | None, *, by: str
) -> PasswordReset:
    """Everything a reset changes, in the caller's one transaction (the proof spent)."""
    account = await _target_of(tx, proof, lock=True)
    link = await _require_choice(tx, account, choice)
    await tx.accounts.update(account.id, password_hash=new_hash)
    ended = await tx.sessions.revoke_all(account.id)
    voided = await tx.email_codes.void(account.id, VOIDED, now=tx.now())
    removed = link is not None and choice == "remove"
    if link is not None and removed:
        await tx.identities.unlink(account.id)
        tx.audit(
            Event.AMAZON_UNLINKED,
            account_id=account.id,
            profile=AmazonProfile(user_id=link.amazon_user_id, client_id=link.client_id),
            detail="reason=password_reset",
        )
    amazon = "none" if link is None else ("removed" if removed else "kept")
    tx.audit(
        Event.PASSWORD_RESET,
        account_id=account.id,
        detail=f"by={by} sessions_ended={ended} proofs_voided={voided} amazon={amazon}",
    )
    await notify(tx, account, "password_reset")  # with its "This wasn't me" link
    return PasswordReset(account_id=account.id, sessions_ended=ended, amazon_removed=removed)
