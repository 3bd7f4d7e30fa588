"""``--gate``: CPU per operation (server + PostgreSQL), never throughput, which moves ~20 %
between rounds on this shared machine (CPU ~10 %). The goals are issue 11's."""

from __future__ import annotations

from typing import Any

from benchmarks.report import headline_cpu

# Ours must be at most this fraction of the peer's CPU per operation (issue 11's goals).
PEER_RATIOS = {"returning_amazon": {"social": 1 / 3, "allauth": 1 / 4.5, "floor": 1.0}}
# Absolute goals, server + PostgreSQL CPU ms per operation, sequential, one worker.
ABSOLUTE_MS = {"returning_amazon": 3.5, "first_amazon": 4.5, "session_check": 0.5}


def check_gate(document: dict[str, Any]) -> list[str]:
    failures: list[str] = []
    systems = document["systems"]
    ours = systems.get("ours")
    if ours is None:
        return ["no result for ours"]
    for scenario, limit in ABSOLUTE_MS.items():
        cpu = headline_cpu(ours, scenario)
        if cpu is not None and cpu > limit:
            failures.append(f"{scenario}: ours {cpu:.2f} ms/op > goal {limit} ms")
    for scenario, peers in PEER_RATIOS.items():
        mine = headline_cpu(ours, scenario)
        for peer, limit in peers.items():
            theirs = headline_cpu(systems[peer], scenario) if peer in systems else None
            if mine is None or theirs is None:
                continue
            if mine / theirs > limit:
                failures.append(f"{scenario}: ours/{peer} = {mine / theirs:.2f} > {limit:.2f}")
    return failures
