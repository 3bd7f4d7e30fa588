"""When requests are sent: the open model (fixed arrival rate) and the closed loop.

Both take ``send(index) -> ok`` and know nothing of HTTP, so they are tested with fake
servers. The open model computes each latency from the *intended* send time: if the
server stalls, requests that should have gone out meanwhile count the stall in full
instead of silently waiting for a free connection (coordinated omission). Each record
also keeps the service time (from the moment the request really left) to show the
difference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Send = Callable[[int], Awaitable[bool]]


@dataclass
class Outcome:
    intended: float  # when the schedule meant to send it (perf_counter seconds)
    started: float  # when a connection slot was free and it really went out
    finished: float
    ok: bool

    @property
    def latency(self) -> float:
        return self.finished - self.intended

    @property
    def service(self) -> float:
        return self.finished - self.started


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    began: float = 0.0
    ended: float = 0.0
    unfinished: int = 0  # still in flight when the drain deadline passed
    exhausted: bool = False  # ran out of prepared operations before the time was up

    @property
    def elapsed(self) -> float:
        return self.ended - self.began


async def open_model(
    send: Send,
    *,
    rate: float,
    duration: float,
    available: int,
    max_in_flight: int = 512,
    drain_timeout: float = 10.0,
    clock: Callable[[], float] = time.perf_counter,
) -> Run:
    """Send request i at ``began + i / rate`` for ``duration`` seconds, whatever the server
    does. At most ``max_in_flight`` requests are outstanding; a request waiting for a slot
    still has its latency measured from its intended time."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    count = min(available, max(1, int(rate * duration)))
    slots = asyncio.Semaphore(max_in_flight)
    run = Run(exhausted=count < int(rate * duration))
    tasks: list[asyncio.Task[None]] = []

    async def one(index: int, intended: float) -> None:
        async with slots:
            started = clock()
            ok = await _guarded(send, index)
            run.outcomes.append(Outcome(intended, started, clock(), ok))

    run.began = clock()
    for index in range(count):
        intended = run.began + index / rate
        delay = intended - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, intended)))
    _done, pending = await asyncio.wait(tasks, timeout=drain_timeout) if tasks else ((), ())
    for task in pending:
        task.cancel()
    run.unfinished = len(pending)
    run.ended = max((o.finished for o in run.outcomes), default=clock())
    return run


async def closed_loop(
    send: Send,
    *,
    concurrency: int,
    duration: float,
    available: int,
    clock: Callable[[], float] = time.perf_counter,
) -> Run:
    """``concurrency`` workers, each sending its next request as soon as the last one is
    answered, until ``duration`` passes or the prepared operations run out. Its rate is
    the most the server sustains at that concurrency."""
    run = Run()
    next_index = 0
    run.began = clock()
    stop = run.began + duration

    async def worker() -> None:
        nonlocal next_index
        while clock() < stop:
            if next_index >= available:
                run.exhausted = True
                return
            index = next_index
            next_index += 1
            started = clock()
            ok = await _guarded(send, index)
            run.outcomes.append(Outcome(started, started, clock(), ok))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.ended = clock()
    return run


async def _guarded(send: Send, index: int) -> bool:
    # A transport error is a failed operation, not the end of the run.
    try:
        return await send(index)
    except (TimeoutError, OSError):
        return False
