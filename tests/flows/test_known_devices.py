"""flows/known_devices.py: a device proof counts only when intact, in time, for this
account and its current password; anything else counts as none (security.md item 8)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lwa_accounts import signing
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account
from lwa_accounts.flows.context import Context, Deps
from lwa_accounts.flows.known_devices import PURPOSE, recognise, remember
from lwa_accounts.flows.passwords import check_password
from tests.flows.conftest import PASSWORD, fast_settings, make_user


def presenting(ctx: Context, proof: str | None) -> Context:
    return replace(ctx, client=replace(ctx.client, device_proof=proof))


@pytest.fixture
async def ada(ctx: Context) -> Account:
    return await make_user(ctx)


@pytest.fixture
async def grace(ctx: Context) -> Account:
    return await make_user(ctx, username="grace", email="grace@example.com")


async def test_a_proof_is_recognised_for_its_account_and_renewed_with_its_nonce(
    ctx: Context, ada: Account
) -> None:
    proof = remember(ctx, ada)
    assert proof is not None
    nonce = recognise(presenting(ctx, proof), ada)
    assert nonce is not None
    assert len(nonce) >= 16
    renewed = remember(presenting(ctx, proof), ada)
    assert renewed is not None
    assert recognise(presenting(ctx, renewed), ada) == nonce  # same device, same budget
    fresh = remember(ctx, ada)  # a client without a proof: a new device
    assert fresh is not None
    assert recognise(presenting(ctx, fresh), ada) not in (None, nonce)


async def test_a_proof_for_one_account_is_none_for_another(
    ctx: Context, ada: Account, grace: Account
) -> None:
    proof = remember(ctx, ada)
    assert recognise(presenting(ctx, proof), grace) is None
    assert recognise(presenting(ctx, proof), None) is None  # an unknown login

    # Each field binds on its own: ada's password tag under grace's id is still grace's.
    def data_of(value: str | None) -> dict[str, object]:
        data = signing.loads(ctx.settings, PURPOSE, value, now=ctx.now(), max_age=60)
        assert data is not None
        return data

    mixed = {**data_of(remember(ctx, grace)), "p": data_of(proof)["p"]}
    mixed_proof = signing.dumps(ctx.settings, PURPOSE, mixed, now=ctx.now())
    assert recognise(presenting(ctx, mixed_proof), ada) is None
    assert recognise(presenting(ctx, mixed_proof), grace) is None
    # Renewing at another account's sign-in gives a new nonce, not the other's budget.
    other = remember(presenting(ctx, proof), grace)
    assert recognise(presenting(ctx, other), grace) != recognise(presenting(ctx, proof), ada)


async def test_an_altered_proof_counts_as_none(ctx: Context, ada: Account) -> None:
    proof = remember(ctx, ada)
    assert proof is not None
    altered = [
        proof[:-1] + ("A" if proof[-1] != "A" else "B"),
        proof[:20] + ("x" if proof[20] != "x" else "y") + proof[21:],
        proof[:-5],
        proof + "A",
        "",
        "not a proof",
        "é" + proof,
    ]
    for value in altered:
        assert recognise(presenting(ctx, value), ada) is None, value


async def test_a_proof_signed_otherwise_counts_as_none(
    ctx: Context, ada: Account, tmp_path: Path
) -> None:
    proof = remember(ctx, ada)
    assert proof is not None
    data = signing.loads(ctx.settings, PURPOSE, proof, now=ctx.now(), max_age=60)
    assert data is not None
    assert set(data) == {"a", "n", "p"}
    # The same data signed for another purpose, or with a key that is not ours.
    as_csrf = signing.dumps(ctx.settings, "csrf", data, now=ctx.now())
    assert recognise(presenting(ctx, as_csrf), ada) is None
    other_key = fast_settings(tmp_path, secret_key="another-key-" + "x" * 40)
    forged = signing.dumps(other_key, PURPOSE, data, now=ctx.now())
    assert recognise(presenting(ctx, forged), ada) is None
    # Ours, for ada's id, but with a made-up password tag.
    guessed = signing.dumps(ctx.settings, PURPOSE, {**data, "p": "0" * 32}, now=ctx.now())
    assert recognise(presenting(ctx, guessed), ada) is None


async def test_a_proof_expires_after_its_max_age(
    ctx: Context, ada: Account, clock: FixedClock
) -> None:
    proof = remember(ctx, ada)
    max_age = ctx.settings.known_device_max_age_seconds
    assert max_age == 180 * 24 * 3600
    clock.advance(max_age - 1)
    assert recognise(presenting(ctx, proof), ada) is not None
    clock.advance(2)
    assert recognise(presenting(ctx, proof), ada) is None


async def test_a_password_change_retires_every_proof(
    ctx: Context, deps: Deps, ada: Account
) -> None:
    proof = remember(ctx, ada)
    changed = replace(ada, password_hash=await deps.hasher.hash("a-new-password-77"))
    assert recognise(presenting(ctx, proof), changed) is None
    assert remember(ctx, replace(ada, password_hash=None)) is None  # nothing to bind to


async def test_check_password_uses_the_devices_budget_only_with_a_valid_proof(
    ctx: Context, ada: Account, grace: Account
) -> None:
    """The account's budget spent by guesses from many addresses: the owner's known device
    still has its password checked; a proof for grace, or none, does not."""
    for n in range(10):  # the free budget (10/day), one address each
        spray = replace(ctx, client=replace(ctx.client, ip=f"203.0.113.{n}"))
        wrong = await check_password(spray, account=ada, account_key=ada.id, password="nope")
        assert wrong.reason == "wrong_password"
    unknown = await check_password(ctx, account=ada, account_key=ada.id, password=PASSWORD)
    assert unknown.reason == "throttled"
    assert unknown.error is not None
    assert unknown.error.retry_after == 60
    foreign = presenting(ctx, remember(ctx, grace))
    assert (
        await check_password(foreign, account=ada, account_key=ada.id, password=PASSWORD)
    ).reason == "throttled"
    known = presenting(ctx, remember(ctx, ada))
    assert (await check_password(known, account=ada, account_key=ada.id, password=PASSWORD)).ok
