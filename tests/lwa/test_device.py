"""The async CBL driver: waits as the state machine says, stops on a result, cancellable."""

from __future__ import annotations

import asyncio

import pytest

from lwa_accounts.core.device_poll import Done, Fail, StartOver
from lwa_accounts.core.models import CodePair, OAuthErrorReply, TokenSet
from lwa_accounts.errors import AmazonUnavailable
from lwa_accounts.lwa.device import poll_until_done

TOKENS = TokenSet("Atza|a", "bearer", 3600, "Atzr|r")
PAIR = CodePair("FUP8UN", "85581b0f", "https://amazon.com/us/code", expires_in=600, interval=30)

Reply = TokenSet | OAuthErrorReply | AmazonUnavailable


class ScriptedAmazon:
    """Answers polls from a script (the last answer repeats) and records when they came."""

    def __init__(self, clock: FakeClock, script: list[Reply]) -> None:
        self.clock = clock
        self.script = script
        self.polls: list[tuple[float, str, str]] = []

    async def poll_device_token(
        self, *, device_code: str, user_code: str
    ) -> TokenSet | OAuthErrorReply:
        self.polls.append((self.clock.now, device_code, user_code))
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, AmazonUnavailable):
            raise answer
        return answer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def pending() -> OAuthErrorReply:
    return OAuthErrorReply(400, "authorization_pending")


async def test_polls_at_the_interval_until_tokens() -> None:
    clock = FakeClock()
    amazon = ScriptedAmazon(clock, [pending(), pending(), TOKENS, pending()])
    result = await poll_until_done(amazon, PAIR, sleep=clock.sleep, clock=clock)
    assert result == Done(TOKENS)
    assert [t for t, _, _ in amazon.polls] == [0.0, 30.0, 60.0]  # and none after the tokens
    assert {(d, u) for _, d, u in amazon.polls} == {("85581b0f", "FUP8UN")}


async def test_slow_down_doubles_and_unavailable_keeps_polling() -> None:
    clock = FakeClock()
    amazon = ScriptedAmazon(
        clock,
        [
            OAuthErrorReply(400, "slow_down"),
            AmazonUnavailable(),
            OAuthErrorReply(400, "slow_down"),
            TOKENS,
        ],
    )
    result = await poll_until_done(amazon, PAIR, sleep=clock.sleep, clock=clock)
    assert result == Done(TOKENS)
    assert [t for t, _, _ in amazon.polls] == [0.0, 60.0, 120.0, 180.0]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (OAuthErrorReply(400, "invalid_code_pair"), StartOver("invalid_code_pair")),
        (OAuthErrorReply(400, "access_denied"), Fail("access_denied")),
        (OAuthErrorReply(401, "invalid_client"), Fail("invalid_client")),
    ],
)
async def test_terminal_answers(answer: OAuthErrorReply, expected: object) -> None:
    clock = FakeClock()
    amazon = ScriptedAmazon(clock, [pending(), answer])
    assert await poll_until_done(amazon, PAIR, sleep=clock.sleep, clock=clock) == expected
    assert len(amazon.polls) == 2


async def test_expires_locally_without_an_answer() -> None:
    clock = FakeClock()
    amazon = ScriptedAmazon(clock, [pending()])
    result = await poll_until_done(amazon, PAIR, sleep=clock.sleep, clock=clock)
    assert result == StartOver("expired")
    assert len(amazon.polls) == 20  # 0, 30, ..., 570: never at or after 600
    assert amazon.polls[-1][0] < PAIR.expires_in


async def test_cancellation_stops_polling() -> None:
    clock = FakeClock()
    amazon = ScriptedAmazon(clock, [pending()])
    released = asyncio.Event()

    async def real_sleep(seconds: float) -> None:
        released.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(poll_until_done(amazon, PAIR, sleep=real_sleep, clock=clock))
    await asyncio.wait_for(released.wait(), timeout=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(amazon.polls) == 1
