"""Amazon code-based linking (CBL): the polling state machine, pure (events in, action out).

The driver (``lwa/device.py``) owns the clock and the HTTP calls. It feeds every event here
with the monotonic time it happened at (``at``, seconds) and does what the returned action
says: wait and poll, hand over the tokens, ask the user to start over, or give up.

Rules (lwa-protocol.md sections 1.3-1.4 and 6):
- the first poll goes out at once, then never faster than the current interval;
- ``slow_down`` doubles the interval, capped at 60 s (what Amazon's own SDKs do);
- ``invalid_code_pair``, ``expired_token``, ``invalid_grant`` and the local expiry of the
  code pair (``expires_in``) mean "start over with a new code pair";
- a denial and the unrecoverable OAuth errors end the flow; unknown error codes and
  transport failures are treated as "no answer yet" (AVS keeps polling on unknown codes);
- no poll is ever scheduled at or after the expiry, and nothing polls after a terminal state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from lwa_accounts.core.models import TokenSet

MIN_INTERVAL = 1.0  # never hammer Amazon, even if it sends interval=0
MAX_INTERVAL = 60.0

# OAuth errors after which polling can never succeed (AVS CBLAuthDelegate's list).
FATAL_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "InvalidValue",
        "unauthorized_client",
        "unsupported_grant_type",
    }
)
START_OVER_ERRORS = frozenset({"invalid_code_pair", "expired_token", "invalid_grant"})
DENIAL_ERRORS = frozenset({"access_denied"})


# ---- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """A code pair was created; ``interval`` and ``expires_in`` come from it."""

    at: float
    interval: float
    expires_in: float


@dataclass(frozen=True, slots=True)
class Pending:
    """``authorization_pending``: the person has not entered the code yet."""

    at: float


@dataclass(frozen=True, slots=True)
class SlowDownReceived:
    at: float


@dataclass(frozen=True, slots=True)
class Granted:
    at: float
    tokens: TokenSet


@dataclass(frozen=True, slots=True)
class Denied:
    at: float


@dataclass(frozen=True, slots=True)
class InvalidCodePair:
    at: float


@dataclass(frozen=True, slots=True)
class ExpiredToken:
    at: float


@dataclass(frozen=True, slots=True)
class OtherError:
    """Any other OAuth ``error`` code from the token endpoint."""

    at: float
    error: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The poll got no usable answer (timeout, dropped connection, 5xx, garbage body)."""

    at: float


@dataclass(frozen=True, slots=True)
class Tick:
    """The driver woke up (timer or cancellation check) without a response."""

    at: float


Event = (
    Started
    | Pending
    | SlowDownReceived
    | Granted
    | Denied
    | InvalidCodePair
    | ExpiredToken
    | OtherError
    | Unreachable
    | Tick
)


def event_for_error(error: str, at: float) -> Event:
    """The event for an OAuth ``error`` code from a device-token poll."""
    if error == "authorization_pending":
        return Pending(at)
    if error == "slow_down":
        return SlowDownReceived(at)
    if error == "invalid_code_pair":
        return InvalidCodePair(at)
    if error == "expired_token":
        return ExpiredToken(at)
    if error in DENIAL_ERRORS:
        return Denied(at)
    return OtherError(at, error)


# ---- actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollAfter:
    """Wait ``seconds`` (from the event's time), then poll once and report the answer."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Done:
    tokens: TokenSet


@dataclass(frozen=True, slots=True)
class StartOver:
    """The code pair is dead (expired or refused): show the person a new one."""

    reason: str


@dataclass(frozen=True, slots=True)
class Fail:
    reason: str


Action = PollAfter | Done | StartOver | Fail

Phase = Literal["new", "polling", "done", "start_over", "failed"]


# ---- state -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollState:
    phase: Phase = "new"
    interval: float = 0.0
    expires_at: float = 0.0
    next_poll_at: float = 0.0
    outcome: Action | None = None  # the terminal action, repeated for any later event

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "start_over", "failed")


def _clamp_interval(seconds: float) -> float:
    return min(max(seconds, MIN_INTERVAL), MAX_INTERVAL)


def _finish(state: PollState, action: Done | StartOver | Fail) -> tuple[PollState, Action]:
    phase: Phase = (
        "done"
        if isinstance(action, Done)
        else "start_over"
        if isinstance(action, StartOver)
        else "failed"
    )
    return replace(state, phase=phase, outcome=action), action


def _schedule(state: PollState, at: float, earliest: float) -> tuple[PollState, Action]:
    """Poll at ``earliest`` (or now if that is past), unless the code pair expires first."""
    when = max(at, earliest)
    if when >= state.expires_at:
        return _finish(state, StartOver("expired"))
    return replace(state, phase="polling", next_poll_at=when), PollAfter(when - at)


def step(state: PollState, event: Event) -> tuple[PollState, Action]:
    """The next state and what the driver must do now."""
    if state.finished:
        assert state.outcome is not None
        return state, state.outcome  # never poll again after a terminal state
    if isinstance(event, Started):
        if state.phase != "new":
            return _finish(state, Fail("started_twice"))
        if event.expires_in <= 0:
            return _finish(state, StartOver("expired"))
        fresh = PollState(
            phase="polling",
            interval=_clamp_interval(event.interval),
            expires_at=event.at + event.expires_in,
            next_poll_at=event.at,
        )
        return _schedule(fresh, event.at, event.at)
    if state.phase == "new":
        return _finish(state, Fail("not_started"))
    if isinstance(event, Granted):
        return _finish(state, Done(event.tokens))
    if isinstance(event, Denied):
        return _finish(state, Fail("access_denied"))
    if isinstance(event, InvalidCodePair):
        return _finish(state, StartOver("invalid_code_pair"))
    if isinstance(event, ExpiredToken):
        return _finish(state, StartOver("expired_token"))
    if isinstance(event, OtherError):
        if event.error in FATAL_ERRORS:
            return _finish(state, Fail(event.error))
        if event.error in START_OVER_ERRORS:
            return _finish(state, StartOver(event.error))
        if event.error in DENIAL_ERRORS:
            return _finish(state, Fail("access_denied"))
        return _schedule(state, event.at, event.at + state.interval)
    if isinstance(event, SlowDownReceived):
        slower = replace(state, interval=min(state.interval * 2, MAX_INTERVAL))
        return _schedule(slower, event.at, event.at + slower.interval)
    if isinstance(event, Pending | Unreachable):
        return _schedule(state, event.at, event.at + state.interval)
    # Tick: keep the poll already planned; only the expiry can change the plan.
    return _schedule(state, event.at, state.next_poll_at)


def start(at: float, interval: float, expires_in: float) -> tuple[PollState, Action]:
    """Shorthand for ``step(PollState(), Started(...))``."""
    return step(PollState(), Started(at, interval, expires_in))
