"""The device grant state machine and the user-code rules (security.md items 15 and 16)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwa_accounts.core.device_grant import (
    MAX_INTERVAL_SECONDS,
    USER_CODE_ALPHABET,
    USER_CODE_LENGTH,
    AlreadyUsed,
    Approved,
    AwaitingApproval,
    Denied,
    DeviceGrant,
    Expired,
    NotDecidable,
    SlowDown,
    approve,
    code_digest,
    deny,
    display_user_code,
    new_device_code,
    new_grant,
    new_user_code,
    parse_user_code,
    poll,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- user codes --------------------------------------------------------------------------


def test_sec15_user_code_has_eight_chars_from_the_alphabet() -> None:
    assert USER_CODE_ALPHABET == "BCDFGHJKLMNPQRSTVWXZ"
    for _ in range(200):
        code = new_user_code()
        assert len(code) == USER_CODE_LENGTH >= 8
        assert set(code) <= set(USER_CODE_ALPHABET)


def test_user_code_uses_the_whole_alphabet_uniformly_enough() -> None:
    rng = random.Random(1)
    letters = "".join(new_user_code(rng.randrange) for _ in range(500))
    assert set(letters) == set(USER_CODE_ALPHABET)


def test_display_groups_in_fours() -> None:
    assert display_user_code("BCDFGHJK") == "BCDF-GHJK"


@pytest.mark.parametrize(
    "typed",
    ["BCDF-GHJK", "bcdf-ghjk", "bcdfghjk", " bc df gh jk ", "BCDF\u2013GHJK", "b-c-d-f-g-h-j-k"],
)
def test_sec15_entry_ignores_case_spaces_and_dashes(typed: str) -> None:
    assert parse_user_code(typed) == "BCDFGHJK"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "BCDF-GHJ",  # too short
        "BCDF-GHJKL",  # too long
        "ABCD-EFGH",  # vowels are not in the alphabet
        "BCDF-GHJ1",  # digits neither
        "BCDF_GHJK",  # underscore is not a separator
        "\uff22CDF-GHJK",  # full-width B
        "BCDF-GHJ\u212a",  # Kelvin sign looks like K
        "BCDF-GH\x00JK",
        "B" * 10_000,
    ],
)
def test_entry_rejects_anything_else(typed: str) -> None:
    assert parse_user_code(typed) is None


@given(st.text(alphabet=USER_CODE_ALPHABET, min_size=8, max_size=8), st.data())
def test_entry_of_a_displayed_code_with_noise_round_trips(code: str, data: st.DataObject) -> None:
    shown = display_user_code(code)
    noisy = "".join(
        data.draw(st.sampled_from([char, char.lower()]))
        + data.draw(st.sampled_from(["", " ", "-", "  "]))
        for char in shown
    )
    assert parse_user_code(noisy) == code


@given(st.text(max_size=40))
def test_parsed_codes_are_always_canonical(text: str) -> None:
    code = parse_user_code(text)
    if code is not None:
        assert len(code) == 8
        assert set(code) <= set(USER_CODE_ALPHABET)
        assert parse_user_code(code) == code


def test_sec16_device_code_has_at_least_128_bits_and_is_stored_as_a_digest() -> None:
    codes = {new_device_code() for _ in range(100)}
    assert len(codes) == 100
    for code in codes:
        # token_urlsafe: 6 bits per character.
        assert len(code) * 6 >= 128
    code = next(iter(codes))
    digest = code_digest(code)
    assert digest != code
    assert len(digest) == 64
    assert code_digest(code) == digest


def test_user_code_space_is_large() -> None:
    assert math.log2(len(USER_CODE_ALPHABET) ** USER_CODE_LENGTH) > 34


# ---- the grant -------------------------------------------------------------------------------


def grant(ttl: int = 600, interval: int = 5) -> DeviceGrant:
    return new_grant(T0, ttl_seconds=ttl, interval=interval)


def test_sec15_ttl_is_at_most_fifteen_minutes() -> None:
    assert grant(900).expires_at == at(900)
    with pytest.raises(ValueError, match="ttl"):
        new_grant(T0, ttl_seconds=901, interval=5)
    with pytest.raises(ValueError, match="ttl"):
        new_grant(T0, ttl_seconds=0, interval=5)
    with pytest.raises(ValueError, match="interval"):
        new_grant(T0, ttl_seconds=60, interval=0)


def test_pending_then_approved_then_spent() -> None:
    g = grant()
    outcome, g = poll(g, at(0))
    assert outcome == AwaitingApproval()
    approved = approve(g, "acc_1", at(3))
    assert isinstance(approved, DeviceGrant)
    outcome, g = poll(approved, at(5))
    assert outcome == Approved("acc_1")
    assert g.status == "consumed"
    outcome, g = poll(g, at(20))
    assert outcome == AlreadyUsed()


def test_denied_is_answered_as_denied() -> None:
    denied = deny(grant(), at(1))
    assert isinstance(denied, DeviceGrant)
    outcome, _ = poll(denied, at(2))
    assert outcome == Denied()


def test_sec16_polling_too_fast_gets_slow_down_and_five_more_seconds() -> None:
    g = grant(interval=5)
    _, g = poll(g, at(0))
    outcome, g = poll(g, at(4.9))
    assert outcome == SlowDown(10)
    assert g.interval == 10
    # The new interval counts from the rejected poll.
    outcome, g = poll(g, at(12))
    assert outcome == SlowDown(15)
    outcome, g = poll(g, at(27))
    assert outcome == AwaitingApproval()


def test_slow_down_never_passes_the_cap() -> None:
    g = grant(interval=58)
    _, g = poll(g, at(0))
    outcome, g = poll(g, at(1))
    assert outcome == SlowDown(MAX_INTERVAL_SECONDS)
    outcome, g = poll(g, at(2))
    assert outcome == SlowDown(MAX_INTERVAL_SECONDS)


def test_expired_grant_cannot_be_polled_approved_or_denied() -> None:
    g = grant(ttl=60)
    outcome, _ = poll(g, at(60))
    assert outcome == Expired()
    assert approve(g, "acc_1", at(60)) == NotDecidable("expired")
    assert deny(g, at(61)) == NotDecidable("expired")
    assert not g.is_open(at(60))
    assert g.is_open(at(59))


def test_an_approval_not_collected_in_time_expires() -> None:
    approved = approve(grant(ttl=60), "acc_1", at(10))
    assert isinstance(approved, DeviceGrant)
    outcome, _ = poll(approved, at(61))
    assert outcome == Expired()


def test_a_decision_is_final() -> None:
    approved = approve(grant(), "acc_1", at(1))
    assert isinstance(approved, DeviceGrant)
    assert approve(approved, "acc_2", at(2)) == NotDecidable("already_decided")
    assert deny(approved, at(2)) == NotDecidable("already_decided")
    denied = deny(grant(), at(1))
    assert isinstance(denied, DeviceGrant)
    assert approve(denied, "acc_1", at(2)) == NotDecidable("already_decided")


Action = tuple[str, float]


@given(
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=30, max_value=900),
    st.lists(
        st.tuples(st.sampled_from(["poll", "approve", "deny"]), st.floats(0, 40)), max_size=40
    ),
)
def test_grant_invariants_under_any_schedule(
    interval: int, ttl: int, actions: list[Action]
) -> None:
    g = new_grant(T0, ttl_seconds=ttl, interval=interval)
    now = T0
    handed_out = 0
    last_poll: datetime | None = None
    for kind, gap in actions:
        now += timedelta(seconds=gap)
        before = g
        if kind == "poll":
            outcome, g = poll(g, now)
            assert g.interval <= MAX_INTERVAL_SECONDS
            if isinstance(outcome, Approved):
                handed_out += 1
                # Never handed out after expiry, never without the interval respected.
                assert now < g.expires_at
                assert before.status == "approved"
            if (
                last_poll is not None
                and before.status != "consumed"
                and now < before.expires_at
                and now - last_poll < timedelta(seconds=before.interval)
            ):
                assert isinstance(outcome, SlowDown)
            if isinstance(outcome, SlowDown):
                assert outcome.interval == g.interval > before.interval or (
                    g.interval == MAX_INTERVAL_SECONDS
                )
            if not isinstance(outcome, AlreadyUsed | Expired):
                last_poll = now
        elif kind == "approve":
            result = approve(g, "acc_1", now)
            if isinstance(result, DeviceGrant):
                assert before.is_open(now)
                g = result
        else:
            result = deny(g, now)
            if isinstance(result, DeviceGrant):
                assert before.is_open(now)
                g = result
    assert handed_out <= 1


def test_digest_accepts_any_string() -> None:
    assert len(code_digest("\ud800")) == 64
