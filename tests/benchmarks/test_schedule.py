"""The open-model scheduler counts coordinated omission; the closed loop saturates."""

from __future__ import annotations

import asyncio
import time

from benchmarks.schedule import closed_loop, open_model
from benchmarks.stats import percentile


class StallingServer:
    """A fake server on one connection: its first request stalls, the others are quick."""

    def __init__(self, stall: float, quick: float = 0.001) -> None:
        self.stall, self.quick = stall, quick
        self.calls = 0

    async def send(self, index: int) -> bool:
        self.calls += 1
        await asyncio.sleep(self.stall if self.calls == 1 else self.quick)
        return True


async def test_a_stall_counts_for_every_request_that_should_have_been_sent_meanwhile() -> None:
    server = StallingServer(stall=0.4)
    # One connection (max_in_flight=1), 100 requests/s for 1 s: during the 0.4 s stall
    # ~40 requests are due; a closed-loop client would only have waited once.
    run = await open_model(server.send, rate=100, duration=1.0, available=1000, max_in_flight=1)
    latencies = sorted(o.latency for o in run.outcomes)
    services = sorted(o.service for o in run.outcomes)
    assert len(run.outcomes) == 100
    assert run.unfinished == 0
    # From the intended send time: a third of the requests waited a good part of the stall.
    assert percentile(latencies, 0.75) > 0.1
    assert percentile(latencies, 0.99) > 0.3
    # The service time (from when the request really left) hides it: only one was slow.
    assert percentile(services, 0.75) < 0.05
    assert sum(s > 0.3 for s in services) == 1


async def test_the_open_model_sends_at_its_rate_whatever_the_server_does() -> None:
    async def slow(index: int) -> bool:
        await asyncio.sleep(0.3)
        return True

    run = await open_model(slow, rate=50, duration=0.4, available=1000)
    starts = sorted(o.started - run.began for o in run.outcomes)
    assert len(starts) == 20
    # Request i left at i/50 s (within scheduling slack), not after the previous answer.
    assert all(abs(start - i / 50) < 0.05 for i, start in enumerate(starts))
    assert all(o.latency >= 0.29 for o in run.outcomes)


async def test_the_open_model_stops_at_the_prepared_operations() -> None:
    sent: list[int] = []

    async def send(index: int) -> bool:
        sent.append(index)
        return True

    run = await open_model(send, rate=200, duration=0.5, available=30)
    assert sent == list(range(30))
    assert run.exhausted


async def test_the_closed_loop_keeps_concurrency_requests_in_flight() -> None:
    in_flight = 0
    most = 0

    async def send(index: int) -> bool:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return index % 2 == 0

    began = time.perf_counter()
    run = await closed_loop(send, concurrency=4, duration=0.3, available=10_000)
    assert most == 4
    assert time.perf_counter() - began < 0.5
    # ~4 / 10 ms for 0.3 s = ~120; a loaded machine runs slower, never faster.
    assert 20 <= len(run.outcomes) <= 130
    assert {o.ok for o in run.outcomes} == {True, False}
    assert not run.exhausted


async def test_transport_errors_are_failed_operations_not_the_end_of_the_run() -> None:
    async def send(index: int) -> bool:
        if index % 3 == 0:
            raise ConnectionResetError("peer went away")
        return True

    run = await closed_loop(send, concurrency=1, duration=5, available=9)
    assert [o.ok for o in run.outcomes] == [False, True, True] * 3
    assert run.exhausted
