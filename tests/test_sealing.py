"""sealing.Sealer: AES-GCM with per-purpose HKDF keys, bound to a record."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwa_accounts.sealing import VERSION, SealBroken, Sealer, sealed_length
from lwa_accounts.settings import Settings


def _sealer(key: str = "k" * 48) -> Sealer:
    return Sealer(Settings(env="test", secret_key=key, data_dir=Path("/nonexistent")))


def _flip(sealed: str, index: int) -> str:
    version, _, body = sealed.partition(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index % len(raw)] ^= 0x01
    return f"{version}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"


def test_round_trip_hides_the_plaintext() -> None:
    sealer = _sealer()
    sealed = sealer.seal("handoff-flow-id", "flw_secret-flow-id", aad="row-1")
    assert sealed.startswith(VERSION + ".")
    assert "flw_secret" not in sealed
    assert sealer.open("handoff-flow-id", sealed, aad="row-1") == "flw_secret-flow-id"


def test_each_seal_uses_a_fresh_nonce() -> None:
    sealer = _sealer()
    one = sealer.seal("amazon-device-code", "same", aad="a")
    two = sealer.seal("amazon-device-code", "same", aad="a")
    assert one != two


def test_another_record_does_not_open() -> None:
    sealer = _sealer()
    sealed = sealer.seal("handoff-flow-id", "flw_x", aad="row-1")
    with pytest.raises(SealBroken):
        sealer.open("handoff-flow-id", sealed, aad="row-2")


def test_another_purpose_does_not_open() -> None:
    sealer = _sealer()
    sealed = sealer.seal("handoff-flow-id", "flw_x", aad="row-1")
    with pytest.raises(SealBroken):
        sealer.open("amazon-device-code", sealed, aad="row-1")


def test_another_secret_key_does_not_open() -> None:
    sealed = _sealer("a" * 48).seal("handoff-flow-id", "flw_x", aad="row-1")
    with pytest.raises(SealBroken):
        _sealer("b" * 48).open("handoff-flow-id", sealed, aad="row-1")


@given(st.integers(min_value=0, max_value=10_000))
def test_any_flipped_bit_is_detected(index: int) -> None:
    sealer = _sealer()
    sealed = sealer.seal("amazon-device-code", "85581b0f-cf10-459e-b823-477a9220f958", aad="id")
    with pytest.raises(SealBroken):
        sealer.open("amazon-device-code", _flip(sealed, index), aad="id")


@pytest.mark.parametrize(
    "garbage",
    ["", "v1.", "v2.AAAA", "v1.!!!!", "v1." + "A" * 10, "666c775f78", "v1.é", "plain-device-code"],
)
def test_garbage_is_refused_clearly(garbage: str) -> None:
    with pytest.raises(SealBroken):
        _sealer().open("amazon-device-code", garbage, aad="id")


@pytest.mark.parametrize("size", [0, 1, 36, 100, 256])
def test_sealed_length_is_exact(size: int) -> None:
    sealed = _sealer().seal("handoff-flow-id", "x" * size, aad="")
    assert len(sealed) == sealed_length(size)
