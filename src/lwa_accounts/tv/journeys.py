"""The sign-in journeys of a device, as loops over ``DeviceClient`` calls.

A journey shows a code (``on_event``), polls at the interval the server asks for, follows a
hand-off to the phone when the server needs a password or a registration, asks for a fresh
code when one expires, and ends with ``SignedIn`` or raises ``JourneyFailed``. The UI (the
terminal CLI, a test, a Python TV app) only renders the events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from lwa_accounts.tv.client import (
    AmazonCode,
    CodeExpired,
    Denied,
    DeviceApiError,
    DeviceClient,
    HandOff,
    PhoneCode,
    PollResult,
    SignedIn,
    Waiting,
)

JourneyEvent = AmazonCode | PhoneCode | HandOff | CodeExpired
Sleep = Callable[[float], Awaitable[None]]
DEFAULT_MAX_CODES = 3


class JourneyFailed(DeviceApiError):
    """The journey ended without a session: denied, or every code expired."""


def _ignore(event: JourneyEvent) -> None:
    del event


async def sign_in_with_amazon(
    client: DeviceClient,
    *,
    on_event: Callable[[JourneyEvent], None] = _ignore,
    sleep: Sleep = asyncio.sleep,
    max_codes: int = DEFAULT_MAX_CODES,
) -> SignedIn:
    """Amazon's code and address are shown; the person approves at Amazon on another device."""

    async def start() -> tuple[JourneyEvent, Callable[[int], Awaitable[PollResult]]]:
        code = await client.start_amazon()
        return code, lambda interval: client.poll_amazon(code, interval=interval)

    return await _journey(client, start, on_event, sleep, max_codes)


async def sign_in_with_phone(
    client: DeviceClient,
    *,
    on_event: Callable[[JourneyEvent], None] = _ignore,
    sleep: Sleep = asyncio.sleep,
    max_codes: int = DEFAULT_MAX_CODES,
) -> SignedIn:
    """Our code is shown; the person signs in on /activate on a phone and confirms."""

    async def start() -> tuple[JourneyEvent, Callable[[int], Awaitable[PollResult]]]:
        code = await client.start_phone()
        return code, lambda interval: client.poll_phone(code, interval=interval)

    return await _journey(client, start, on_event, sleep, max_codes)


def _flow_poller(client: DeviceClient, handoff: HandOff) -> Callable[[int], Awaitable[PollResult]]:
    return lambda interval: client.poll_flow(handoff, interval=interval)


async def _journey(
    client: DeviceClient,
    start: Callable[[], Awaitable[tuple[JourneyEvent, Callable[[int], Awaitable[PollResult]]]]],
    on_event: Callable[[JourneyEvent], None],
    sleep: Sleep,
    max_codes: int,
) -> SignedIn:
    for _ in range(max_codes):
        shown, poll = await start()
        on_event(shown)
        assert isinstance(shown, AmazonCode | PhoneCode)
        interval = shown.interval
        while True:
            await sleep(interval)
            result = await poll(interval)
            if isinstance(result, Waiting):
                interval = result.interval
            elif isinstance(result, SignedIn):
                return result
            elif isinstance(result, HandOff):
                on_event(result)
                # From now on the device waits for the phone to finish the flow.
                poll = _flow_poller(client, result)
            elif isinstance(result, CodeExpired):
                on_event(result)
                break
            else:
                assert isinstance(result, Denied)
                raise JourneyFailed("access_denied", "The sign-in was declined.")
    raise JourneyFailed("expired", f"No sign-in after {max_codes} codes; try again later.")
