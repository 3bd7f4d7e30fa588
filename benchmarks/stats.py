"""Percentiles and latency summaries (pure; the load generator and the report share them)."""

from __future__ import annotations

import math
from collections.abc import Sequence

QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "p999": 0.999}


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``fraction`` of the
    values at or below it. Nearest-rank never invents a value between two samples, so a
    p99.9 of 1,000 samples is the slowest one, not an interpolation towards it."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within [0, 1], not {fraction}")
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/p99.9, mean and max of latencies given in seconds, in milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {**dict.fromkeys(QUANTILES), "mean": None, "max": None}
    summary: dict[str, float | None] = {
        name: round(percentile(ordered, q) * 1000, 3) for name, q in QUANTILES.items()
    }
    summary["mean"] = round(sum(ordered) / len(ordered) * 1000, 3)
    summary["max"] = round(ordered[-1] * 1000, 3)
    return summary


def per_op(total: float, ops: int) -> float | None:
    return None if ops <= 0 else total / ops


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
