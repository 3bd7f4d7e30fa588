from __future__ import annotations

import math

import pytest

from benchmarks.stats import median, percentile, summarize_ms


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.90) == 90
    assert percentile(values, 0.99) == 99
    assert percentile(values, 0.999) == 100  # the slowest of 100, not an interpolation
    assert percentile(values, 0.0) == 1
    assert percentile(values, 1.0) == 100


def test_a_percentile_is_always_one_of_the_samples() -> None:
    values = [0.1, 0.2, 10.0]
    assert percentile(values, 0.5) == 0.2
    assert percentile(values, 0.9) == 10.0
    assert percentile([7.0], 0.999) == 7.0


def test_edges() -> None:
    assert math.isnan(percentile([], 0.5))
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 1.5)
    assert median([3.0, 1.0, 2.0, 10.0]) == 2.5


def test_summaries_are_in_milliseconds() -> None:
    summary = summarize_ms([0.001 * v for v in range(1, 1001)])
    assert summary == {
        "p50": 500.0,
        "p90": 900.0,
        "p99": 990.0,
        "p999": 999.0,
        "mean": 500.5,
        "max": 1000.0,
    }
    assert summarize_ms([])["p99"] is None
