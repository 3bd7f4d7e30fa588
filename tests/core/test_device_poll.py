"""The pure code-based-linking poller: examples and Hypothesis properties."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwa_accounts.core import device_poll as dp
from lwa_accounts.core.models import TokenSet

TOKENS = TokenSet(access_token="Atza|x", token_type="bearer", expires_in=3600)


def test_first_poll_goes_out_at_once_then_every_interval() -> None:
    state, action = dp.start(at=100.0, interval=30, expires_in=600)
    assert action == dp.PollAfter(0.0)
    state, action = dp.step(state, dp.Pending(at=101.0))
    assert action == dp.PollAfter(30.0)
    assert state.next_poll_at == 131.0


def test_slow_down_doubles_the_interval_up_to_sixty_seconds() -> None:
    state, _ = dp.start(at=0.0, interval=20, expires_in=10_000)
    intervals = []
    for i in range(4):
        state, action = dp.step(state, dp.SlowDownReceived(at=float(i)))
        assert isinstance(action, dp.PollAfter)
        intervals.append(action.seconds)
    assert intervals == [40.0, 60.0, 60.0, 60.0]


def test_tokens_finish_and_nothing_polls_afterwards() -> None:
    state, _ = dp.start(at=0.0, interval=5, expires_in=600)
    state, action = dp.step(state, dp.Granted(at=6.0, tokens=TOKENS))
    assert action == dp.Done(TOKENS)
    for later in (dp.Pending(7.0), dp.Tick(8.0), dp.SlowDownReceived(9.0), dp.Unreachable(9.5)):
        state, again = dp.step(state, later)
        assert again == dp.Done(TOKENS)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("invalid_code_pair", dp.StartOver("invalid_code_pair")),
        ("expired_token", dp.StartOver("expired_token")),
        ("invalid_grant", dp.StartOver("invalid_grant")),
        ("access_denied", dp.Fail("access_denied")),
        ("invalid_request", dp.Fail("invalid_request")),
        ("invalid_client", dp.Fail("invalid_client")),
        ("InvalidValue", dp.Fail("InvalidValue")),
        ("unauthorized_client", dp.Fail("unauthorized_client")),
        ("unsupported_grant_type", dp.Fail("unsupported_grant_type")),
        ("authorization_pending", dp.PollAfter(5.0)),
        ("something_new", dp.PollAfter(5.0)),  # unknown codes: keep polling, like AVS
    ],
)
def test_each_oauth_error_maps_to_its_action(error: str, expected: dp.Action) -> None:
    state, _ = dp.start(at=0.0, interval=5, expires_in=600)
    _, action = dp.step(state, dp.event_for_error(error, at=1.0))
    assert action == expected


def test_local_expiry_means_start_over_even_while_pending() -> None:
    state, _ = dp.start(at=0.0, interval=30, expires_in=60)
    state, action = dp.step(state, dp.Pending(at=1.0))
    assert action == dp.PollAfter(30.0)
    state, action = dp.step(state, dp.Pending(at=31.0))
    assert action == dp.StartOver("expired")  # 61 >= 60: the next poll would be too late


def test_tick_keeps_the_plan_and_notices_expiry() -> None:
    state, _ = dp.start(at=0.0, interval=30, expires_in=100)
    state, _ = dp.step(state, dp.Pending(at=1.0))
    state, action = dp.step(state, dp.Tick(at=11.0))
    assert action == dp.PollAfter(20.0)
    _, action = dp.step(state, dp.Tick(at=100.0))
    assert action == dp.StartOver("expired")


def test_events_before_start_and_a_second_start_fail() -> None:
    assert dp.step(dp.PollState(), dp.Pending(0.0))[1] == dp.Fail("not_started")
    state, _ = dp.start(at=0.0, interval=5, expires_in=60)
    assert dp.step(state, dp.Started(1.0, 5, 60))[1] == dp.Fail("started_twice")


def test_interval_is_clamped_to_sane_bounds() -> None:
    state, _ = dp.start(at=0.0, interval=0, expires_in=60)
    assert state.interval == dp.MIN_INTERVAL
    state, _ = dp.start(at=0.0, interval=600, expires_in=6000)
    assert state.interval == dp.MAX_INTERVAL


# ---- properties --------------------------------------------------------------------------

ERRORS = [
    "authorization_pending",
    "slow_down",
    "invalid_code_pair",
    "expired_token",
    "access_denied",
    "invalid_grant",
    "invalid_request",
    "server_error_unknown",
]


@dataclass
class Reply:
    latency: float
    kind: str  # "tokens", "unreachable", "tick" or an OAuth error code


replies = st.lists(
    st.builds(
        Reply,
        latency=st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
        kind=st.sampled_from(
            [*ERRORS, "tokens", "unreachable", "tick", "authorization_pending", "slow_down"]
        ),
    ),
    max_size=80,
)


def _event(reply: Reply, at: float) -> dp.Event:
    if reply.kind == "tokens":
        return dp.Granted(at, TOKENS)
    if reply.kind == "unreachable":
        return dp.Unreachable(at)
    if reply.kind == "tick":
        return dp.Tick(at)
    return dp.event_for_error(reply.kind, at)


@settings(max_examples=300, deadline=None)
@given(
    start_at=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    interval=st.integers(min_value=0, max_value=120),
    expires_in=st.integers(min_value=1, max_value=1200),
    script=replies,
)
def test_poller_properties(
    start_at: float, interval: int, expires_in: int, script: list[Reply]
) -> None:
    """Simulate a driver: wait as told, poll, the answer arrives after some latency."""
    state, action = dp.start(start_at, interval, expires_in)
    now = start_at
    expires_at = start_at + expires_in
    polls: list[tuple[float, float]] = []  # (time sent, interval in force when scheduled)
    terminal: dp.Action | None = None
    for reply in script:
        assert state.interval <= dp.MAX_INTERVAL
        if not isinstance(action, dp.PollAfter):
            terminal = action
            break
        assert action.seconds >= 0
        if reply.kind == "tick":
            # Woken early: part of the wait has passed, no poll is sent.
            now += min(reply.latency, action.seconds)
            state, action = dp.step(state, dp.Tick(now))
            continue
        now += action.seconds
        assert now < expires_at, "never poll at or after the code pair expires"
        polls.append((now, state.interval))
        now += reply.latency
        state, action = dp.step(state, _event(reply, now))
    else:
        if not isinstance(action, dp.PollAfter):
            terminal = action
    for (earlier, in_force), (later, _) in itertools.pairwise(polls):
        assert later - earlier >= in_force - 1e-9, "never poll faster than the interval"
    if terminal is not None:
        # Once finished, every further event repeats the outcome and never asks to poll.
        for event in (dp.Pending(now + 1), dp.Tick(now + 2), dp.Granted(now + 3, TOKENS)):
            state, again = dp.step(state, event)
            assert again == terminal
            assert not isinstance(again, dp.PollAfter)


@settings(max_examples=200, deadline=None)
@given(
    interval=st.integers(min_value=0, max_value=120),
    expires_in=st.integers(min_value=1, max_value=1200),
    latency=st.floats(min_value=0.0, max_value=5.0, allow_nan=False),
    slow_downs=st.lists(st.booleans(), max_size=50),
)
def test_poller_always_terminates_by_expiry(
    interval: int, expires_in: int, latency: float, slow_downs: list[bool]
) -> None:
    """With nobody approving, the poller ends with StartOver within expires_in."""
    state, action = dp.start(0.0, interval, expires_in)
    now = 0.0
    kinds = iter(slow_downs)
    steps = 0
    while isinstance(action, dp.PollAfter):
        steps += 1
        assert steps <= expires_in + 2, "a bounded number of polls"
        now += action.seconds
        assert now < expires_in
        now += latency
        event: dp.Event = dp.SlowDownReceived(now) if next(kinds, False) else dp.Pending(now)
        state, action = dp.step(state, event)
    assert action == dp.StartOver("expired")
    assert now < expires_in + latency + 1e-9
