"""argon2id hashing, rehash detection, dummy verification and the common-password list."""

from __future__ import annotations

import asyncio

import pytest

from lwa_accounts.passwords import (
    DUMMY_HASH,
    Argon2Hasher,
    common_passwords,
    verify_against_dummy,
)
from lwa_accounts.settings import Settings


def fast_settings(time_cost: int = 1) -> Settings:
    # Small parameters keep most tests fast; two tests below use the real defaults.
    return Settings(
        env="test", argon2_memory_kib=1024, argon2_time_cost=time_cost, argon2_parallelism=1
    )


@pytest.fixture
def hasher() -> Argon2Hasher:
    return Argon2Hasher(fast_settings())


async def test_hash_and_verify(hasher: Argon2Hasher) -> None:
    hashed = await hasher.hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert "correct horse" not in hashed
    assert await hasher.verify(hashed, "correct horse battery") is True
    assert await hasher.verify(hashed, "correct horse batterY") is False
    assert await hasher.verify(hashed, "") is False


async def test_same_password_gets_different_salts(hasher: Argon2Hasher) -> None:
    first, second = await asyncio.gather(hasher.hash("same"), hasher.hash("same"))
    assert first != second


@pytest.mark.parametrize(
    "stored", ["", "not a hash", "$2b$12$abcdefghijklmnopqrstuv", "$argon2id$"]
)
async def test_garbage_hashes_verify_false(hasher: Argon2Hasher, stored: str) -> None:
    assert await hasher.verify(stored, "whatever") is False
    assert hasher.needs_rehash(stored) is True


async def test_rehash_is_needed_when_parameters_change(hasher: Argon2Hasher) -> None:
    old = await hasher.hash("correct horse battery")
    assert hasher.needs_rehash(old) is False
    stronger = Argon2Hasher(fast_settings(time_cost=2))
    assert stronger.needs_rehash(old) is True
    # The old hash still verifies with the new hasher: parameters live in the hash.
    assert await stronger.verify(old, "correct horse battery") is True


async def test_real_defaults_are_owasp_argon2id() -> None:
    hasher = Argon2Hasher(Settings(env="test"))
    hashed = await hasher.hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await hasher.verify(hashed, "correct horse battery") is True
    assert hasher.needs_rehash(hashed) is False
    # The shipped dummy hash uses the same parameters, so it costs the same to verify.
    assert hasher.needs_rehash(DUMMY_HASH) is False
    assert await hasher.dummy_hash() == DUMMY_HASH


async def test_dummy_hash_follows_the_hasher_parameters(hasher: Argon2Hasher) -> None:
    dummy = await hasher.dummy_hash()
    assert dummy != DUMMY_HASH
    assert hasher.needs_rehash(dummy) is False
    assert await hasher.dummy_hash() == dummy  # computed once
    await verify_against_dummy(hasher, "anything")


async def test_hashing_does_not_block_the_event_loop() -> None:
    hasher = Argon2Hasher(Settings(env="test"))  # real cost: tens of milliseconds each
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await asyncio.gather(*(hasher.hash(f"password {i}") for i in range(4)))
    task.cancel()
    # If hashing ran on the loop, the ticker could not have run while it hashed.
    assert ticks - before >= 5


def test_common_password_list() -> None:
    common = common_passwords()
    assert len(common) == 5000
    assert {"password", "12345678", "qwertyuiop", "baseball"} <= common
    assert all(len(p) >= 8 and p == p.lower() for p in common)
    assert not any(p.startswith("#") for p in common)
    assert common_passwords() is common  # loaded once
