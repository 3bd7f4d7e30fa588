"""``interfaces.PasswordHasher`` that also reads a company's existing password hashes.

New hashes are always argon2id (``passwords.Argon2Hasher``). A foreign hash verifies once
and ``needs_rehash`` says so, so the sign-in flow stores an argon2id hash in its place:
users move to argon2id by signing in, without a reset. bcrypt is not supported: no
bcrypt library is among the project's dependencies (add a ``HashFormat`` for it).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Protocol

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.settings import Settings

# A stored hash asking for more work than this is refused rather than run (a denial of
# service by one bad row). Django's default is 1,000,000 (2025); OWASP asks 600,000.
PBKDF2_MAX_ITERATIONS = 10_000_000


def _utf8(password: str) -> bytes | None:
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no stored hash can match
        return None


class HashFormat(Protocol):
    """One foreign hash format. ``verify`` is blocking (it runs in a worker thread)."""

    name: str

    def identifies(self, encoded: str) -> bool: ...

    def verify(self, encoded: str, password: str) -> bool:
        """False on mismatch or a malformed hash; never raises."""
        ...


class DjangoPbkdf2:
    """Django's ``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`` (and ``pbkdf2_sha1``)."""

    def __init__(self, algorithm: str = "sha256") -> None:
        self.algorithm = algorithm
        self.name = f"pbkdf2_{algorithm}"

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith(self.name + "$")

    def verify(self, encoded: str, password: str) -> bool:
        parts = encoded.split("$")
        secret = _utf8(password)
        if len(parts) != 4 or secret is None or not parts[1].isdigit():
            return False
        iterations = int(parts[1])
        try:
            expected = base64.b64decode(parts[3], validate=True)
        except ValueError:
            return False
        if not 0 < iterations <= PBKDF2_MAX_ITERATIONS or not expected:
            return False
        actual = hashlib.pbkdf2_hmac(
            self.algorithm, secret, parts[2].encode(), iterations, dklen=len(expected)
        )
        return hmac.compare_digest(actual, expected)


class SaltedSha256:
    """``sha256$<salt>$<hex of sha256(salt + password)>``, as Django's old salted hashers
    wrote it. Fast, hence weak: upgraded at the first sign-in."""

    name = "sha256"

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith("sha256$")

    def verify(self, encoded: str, password: str) -> bool:
        parts = encoded.split("$")
        secret = _utf8(password)
        if len(parts) != 3 or secret is None:
            return False
        actual = hashlib.sha256(parts[1].encode() + secret).hexdigest()
        return hmac.compare_digest(actual.encode(), parts[2].lower().encode())


class DjangoArgon2:
    """Django's ``argon2$argon2id$v=19$...``: a PHC string behind Django's prefix."""

    name = "django_argon2"

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith("argon2$argon2")

    def verify(self, encoded: str, password: str) -> bool:
        try:
            return argon2.PasswordHasher().verify(encoded.removeprefix("argon2"), password)
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            return False


DEFAULT_FORMATS: tuple[HashFormat, ...] = (
    DjangoPbkdf2("sha256"),
    DjangoPbkdf2("sha1"),
    SaltedSha256(),
    DjangoArgon2(),
)


class LegacyAwareHasher(Argon2Hasher):
    """argon2id for new hashes; verifies argon2id and the given foreign formats.

    ``upgrade=False`` keeps foreign hashes as they are (``needs_rehash`` stays False for
    them), for a company whose old login code must still read every stored hash.
    """

    def __init__(
        self,
        settings: Settings,
        formats: Sequence[HashFormat] = DEFAULT_FORMATS,
        *,
        upgrade: bool = True,
    ) -> None:
        super().__init__(settings)
        self._formats = tuple(formats)
        self._upgrade = upgrade

    def format_of(self, password_hash: str) -> HashFormat | None:
        return next((f for f in self._formats if f.identifies(password_hash)), None)

    async def verify(self, password_hash: str, password: str) -> bool:
        found = self.format_of(password_hash)
        if found is None:
            return await super().verify(password_hash, password)
        # PBKDF2 is CPU-bound (hashlib releases the GIL): keep it off the event loop.
        ok = await asyncio.to_thread(found.verify, password_hash, password)
        # A fast foreign format must not answer sooner than an unknown login does (that
        # spends one argon2 verification), or timing would tell who has an old hash.
        await super().verify(await self.dummy_hash(), password)
        return ok

    def needs_rehash(self, password_hash: str) -> bool:
        if self.format_of(password_hash) is not None:
            return self._upgrade
        return super().needs_rehash(password_hash)


__all__ = [
    "DEFAULT_FORMATS",
    "DjangoArgon2",
    "DjangoPbkdf2",
    "HashFormat",
    "LegacyAwareHasher",
    "SaltedSha256",
]
