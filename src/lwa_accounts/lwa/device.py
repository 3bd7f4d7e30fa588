"""Async driver for Amazon code-based linking: runs ``core.device_poll`` against the client.

The pure state machine decides; this loop only sleeps, polls and reports. Cancelling the
task that runs ``poll_until_done`` stops it at once (while sleeping or mid-request), and no
poll is ever sent after tokens arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from lwa_accounts.core import device_poll
from lwa_accounts.core.device_poll import Done, Fail, PollAfter, StartOver
from lwa_accounts.core.models import CodePair, OAuthErrorReply, TokenSet
from lwa_accounts.errors import AmazonUnavailable


class DeviceTokenPoller(Protocol):
    async def poll_device_token(
        self, *, device_code: str, user_code: str
    ) -> TokenSet | OAuthErrorReply: ...


async def poll_until_done(
    client: DeviceTokenPoller,
    pair: CodePair,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Done | StartOver | Fail:
    """Poll Amazon for the tokens of ``pair`` until they come, or the pair is dead.

    ``Done`` carries the tokens; ``StartOver`` means show a new code pair (expired or
    ``invalid_code_pair``); ``Fail`` means stop (denied, or an unrecoverable client error).
    """
    state, action = device_poll.start(clock(), pair.interval, pair.expires_in)
    while isinstance(action, PollAfter):
        if action.seconds > 0:
            await sleep(action.seconds)
        event: device_poll.Event
        try:
            reply = await client.poll_device_token(
                device_code=pair.device_code, user_code=pair.user_code
            )
        except AmazonUnavailable:
            event = device_poll.Unreachable(clock())
        else:
            if isinstance(reply, TokenSet):
                event = device_poll.Granted(clock(), reply)
            else:
                event = device_poll.event_for_error(reply.error, clock())
        state, action = device_poll.step(state, event)
    return action
