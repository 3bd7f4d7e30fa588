"""Password hashing (argon2id) and the common-password list.

Hashing is deliberately slow (tens of milliseconds, ~19 MiB each), so it runs in a thread
pool bounded by the core count: the event loop stays responsive, and a burst of sign-ins
queues up instead of exhausting memory.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from lwa_accounts.interfaces import PasswordHasher
from lwa_accounts.settings import Settings

# A hash of a random, forgotten password with the default (OWASP) parameters. Verifying
# against it costs as much as a real verification, so an unknown username takes as long
# to refuse as a wrong password.
DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$+bqUK7Ghf2U6mNRg6FSU1A"
    "$qQP5KWjBZ/h3Oo3vnrmHt4ZDAj0h0TeIt3oLvWGwvEc"
)

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    # One pool for the whole process, however many hashers exist (tests make many).
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="argon2")
    return _executor


class Argon2Hasher:
    """``interfaces.PasswordHasher`` with argon2id and the parameters from the settings."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            _pool(), self._hasher.hash, password
        )

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            _pool(), self._verify, password_hash, password
        )

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            # Mismatch, or a stored value that is not an argon2 hash: both just "no".
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters (or is not argon2id at all)."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def dummy_hash(self) -> str:
        """A hash with this hasher's parameters, for timing-equal refusals."""
        if self._dummy_hash is None:
            if not self.needs_rehash(DUMMY_HASH):
                self._dummy_hash = DUMMY_HASH
            else:
                self._dummy_hash = await self.hash(os.urandom(16).hex())
        return self._dummy_hash


async def verify_against_dummy(hasher: PasswordHasher, password: str) -> None:
    """Spend the time of one verification, for a login that matched no account."""
    dummy = await hasher.dummy_hash() if isinstance(hasher, Argon2Hasher) else DUMMY_HASH
    await hasher.verify(dummy, password)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower-case), read once."""
    text = (
        resources.files("lwa_accounts")
        .joinpath("data/common-passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )
