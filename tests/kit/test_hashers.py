"""LegacyAwareHasher: foreign formats verify (against Django's own vectors where they
exist), wrong or malformed hashes are a plain False, and every foreign hash asks for a
rehash so sign-in moves it to argon2id."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lwa_accounts.kit.hashers import (
    PBKDF2_MAX_ITERATIONS,
    DjangoArgon2,
    DjangoPbkdf2,
    LegacyAwareHasher,
    SaltedSha256,
)
from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.settings import Settings
from tests.kit.conftest import (
    DJANGO_MYSTERY,
    DJANGO_MYSTERY_MYSALT,
    DJANGO_S3CR3T,
    pbkdf2_sha1,
    salted_sha256,
)

# Django 5.0's test vector (720,000 iterations, a non-ASCII password).
DJANGO_50 = "pbkdf2_sha256$720000$seasalt$eDupbcisD1UuIiou3hMuMu8oe/XwnpDw45r6AA5iv0E="


@pytest.fixture
def hasher(tmp_path: Path) -> LegacyAwareHasher:
    settings = Settings(env="test", data_dir=tmp_path, argon2_memory_kib=64, argon2_time_cost=1)
    return LegacyAwareHasher(settings)


@pytest.mark.parametrize(
    ("encoded", "password"),
    [
        (DJANGO_MYSTERY, "mystery"),
        (DJANGO_MYSTERY_MYSALT, "mystery"),
        (DJANGO_S3CR3T, "s3cr3t"),
        (DJANGO_50, "lètmein"),
    ],
)
def test_django_pbkdf2_vectors(encoded: str, password: str) -> None:
    fmt = DjangoPbkdf2()
    assert fmt.identifies(encoded)
    assert fmt.verify(encoded, password)
    assert not fmt.verify(encoded, password + " ")
    assert not fmt.verify(encoded, password.upper())


@pytest.mark.parametrize(
    "encoded",
    [
        "pbkdf2_sha256$10000$salt",  # too few parts
        "pbkdf2_sha256$ten$salt$3G81rAm/4ng0tCCPTrx2aWohq7ztDBfFYczGNoUtiKQ=",
        "pbkdf2_sha256$0$salt$3G81rAm/4ng0tCCPTrx2aWohq7ztDBfFYczGNoUtiKQ=",
        "pbkdf2_sha256$10000$salt$not base64!",
        "pbkdf2_sha256$10000$salt$",
        DJANGO_MYSTERY.replace("$10000$", f"${PBKDF2_MAX_ITERATIONS + 1}$"),
        "pbkdf2_sha256$10000$qx1ec0f4lu4l$3G81rAm/4ng0tCCPTrx2aWohq7ztDBfFYczGNoUtiKQ=$extra",
    ],
)
def test_malformed_pbkdf2_is_false_and_fast(encoded: str) -> None:
    started = time.perf_counter()
    assert DjangoPbkdf2().verify(encoded, "mystery") is False
    # The iteration cap refuses the huge count instead of running it.
    assert time.perf_counter() - started < 1.0


def test_pbkdf2_sha1_and_salted_sha256() -> None:
    sha1 = pbkdf2_sha1("hunter2-long", "NaCl")
    assert DjangoPbkdf2("sha1").verify(sha1, "hunter2-long")
    assert not DjangoPbkdf2("sha1").verify(sha1, "hunter2-lonG")
    assert not DjangoPbkdf2().identifies(sha1)

    salted = salted_sha256("sheep", "s4lt")
    fmt = SaltedSha256()
    assert fmt.identifies(salted)
    assert fmt.verify(salted, "sheep")
    assert fmt.verify(salted.upper().replace("SHA256$S4LT$", "sha256$s4lt$"), "sheep")  # hex case
    assert not fmt.verify(salted, "sheep!")
    assert not fmt.verify("sha256$only-two", "sheep")


def test_lone_surrogates_are_a_plain_no() -> None:
    assert DjangoPbkdf2().verify(DJANGO_MYSTERY, "myst\ud800ery") is False
    assert SaltedSha256().verify(salted_sha256("a", "b"), "\udfff") is False


async def test_django_argon2_prefix(hasher: LegacyAwareHasher) -> None:
    phc = await Argon2Hasher(Settings(argon2_memory_kib=64, argon2_time_cost=1)).hash("pw-123456")
    encoded = "argon2" + phc
    assert DjangoArgon2().identifies(encoded)
    assert await hasher.verify(encoded, "pw-123456")
    assert not await hasher.verify(encoded, "pw-1234567")
    assert hasher.needs_rehash(encoded)  # same parameters, but Django's spelling


async def test_every_foreign_format_needs_rehash_argon2id_does_not(
    hasher: LegacyAwareHasher,
) -> None:
    for encoded in (DJANGO_MYSTERY, pbkdf2_sha1("x", "y"), salted_sha256("x", "y")):
        assert hasher.needs_rehash(encoded), encoded
    current = await hasher.hash("a-new-password-1")
    assert current.startswith("$argon2id$")
    assert not hasher.needs_rehash(current)
    assert await hasher.verify(current, "a-new-password-1")
    assert not await hasher.verify(current, "a-new-password-2")


async def test_unknown_formats_verify_nothing(hasher: LegacyAwareHasher) -> None:
    for encoded in ("", "!", "plaintext", "md5$salt$abc", "$2b$12$" + "a" * 53):
        assert await hasher.verify(encoded, encoded) is False
        assert hasher.needs_rehash(encoded)  # not argon2id: nothing to keep


async def test_upgrade_false_keeps_foreign_hashes(tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path, argon2_memory_kib=64, argon2_time_cost=1)
    keep = LegacyAwareHasher(settings, upgrade=False)
    assert await keep.verify(DJANGO_MYSTERY, "mystery")
    assert not keep.needs_rehash(DJANGO_MYSTERY)
    only_sha = LegacyAwareHasher(settings, [SaltedSha256()])
    assert not await only_sha.verify(DJANGO_MYSTERY, "mystery")  # pbkdf2 not enabled


class CountingHasher(LegacyAwareHasher):
    dummy_calls = 0

    async def dummy_hash(self) -> str:
        self.dummy_calls += 1
        return await super().dummy_hash()


async def test_foreign_verification_also_spends_one_argon2(tmp_path: Path) -> None:
    """So a fast legacy hash answers no sooner than an unknown login does."""
    settings = Settings(env="test", data_dir=tmp_path, argon2_memory_kib=64, argon2_time_cost=1)
    hasher = CountingHasher(settings)
    salted = salted_sha256("sheep", "s4lt")
    assert await hasher.verify(salted, "sheep")
    assert not await hasher.verify(salted, "goat")
    assert hasher.dummy_calls == 2
    current = await hasher.hash("sheep-and-goats")
    assert await hasher.verify(current, "sheep-and-goats")
    assert hasher.dummy_calls == 2  # argon2id itself costs what it costs
