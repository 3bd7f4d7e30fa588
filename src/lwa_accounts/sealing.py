"""Sealing small secrets at rest: AES-GCM under keys derived from the server's secret key.

A value the server must read back later but the database must not reveal (a hand-off's
flow id, Amazon's device code) is sealed with ``Sealer(settings).seal(purpose, plaintext,
aad)``. Each purpose has its own key (HKDF-SHA256 with a distinct ``info``), each seal a
random 96-bit nonce, and ``aad`` binds the sealed value to its row, so a value copied into
another row, altered, or sealed for another purpose does not open: ``open`` raises
``SealBroken``. Neither the database alone nor the secret key alone yields the value.

Key rotation (``Settings.signing_keys``): the first key seals, ``open`` tries every key in
turn (AES-GCM refuses a wrong key by its tag), so values sealed before a rotation still open
until their key is dropped.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lwa_accounts.settings import Settings

Purpose = Literal["handoff-flow-id", "amazon-device-code", "outbox-body"]

VERSION: Final = "v1"  # a prefix, so a later key or algorithm can be told apart
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
_KEY_BYTES: Final = 32


class SealBroken(ValueError):
    """The sealed value was altered, belongs to another row or purpose, or is not ours."""


def sealed_length(plaintext_bytes: int) -> int:
    """Characters ``seal`` produces for a plaintext of this many bytes (for column sizes)."""
    raw = NONCE_BYTES + plaintext_bytes + TAG_BYTES
    return len(VERSION) + 1 + (raw * 4 + 2) // 3


@lru_cache(maxsize=64)
def _key(secret: bytes, purpose: str) -> bytes:
    # Derived once per process and purpose: HKDF is cheap, but the seal is on hot paths.
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY_BYTES,
        salt=None,
        info=f"lwa-accounts seal {VERSION} {purpose}".encode(),
    )
    return hkdf.derive(secret)


class Sealer:
    def __init__(self, settings: Settings) -> None:
        # Read at first use: a command that never seals (``db upgrade``) needs no key.
        self._settings = settings

    def _aeads(self, purpose: Purpose) -> list[AESGCM]:
        return [AESGCM(_key(secret, purpose)) for secret in self._settings.signing_keys]

    def seal(self, purpose: Purpose, plaintext: str, aad: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        aead = AESGCM(_key(self._settings.signing_keys[0], purpose))
        sealed = aead.encrypt(nonce, plaintext.encode(), aad.encode())
        return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, purpose: Purpose, sealed: str, aad: str) -> str:
        """The plaintext, or ``SealBroken`` when ``sealed`` is not intact for this
        purpose and ``aad``."""
        version, dot, body = sealed.partition(".")
        if version != VERSION or not dot or not body.isascii():
            raise SealBroken("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as error:
            raise SealBroken("not a sealed value") from error
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise SealBroken("not a sealed value")
        for aead in self._aeads(purpose):
            try:
                plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode())
                break
            except InvalidTag:
                continue
        else:
            raise SealBroken("sealed value altered, bound to another record, or under no key")
        try:
            return plain.decode()
        except UnicodeDecodeError as error:  # pragma: no cover - authentic data is ours
            raise SealBroken("sealed value is not text") from error
