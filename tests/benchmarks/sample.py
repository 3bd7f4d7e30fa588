"""A results document as the runner writes it, small enough to reason about."""

from __future__ import annotations

from typing import Any

from benchmarks.loadgen import summarize
from benchmarks.schedule import Outcome, Run


def phase(name: str, cpu: float, pg: float | None, *, rate: float = 100.0) -> dict[str, Any]:
    run = Run(
        outcomes=[Outcome(0.0, 0.0, 0.01 * (i + 1), True) for i in range(10)], began=0.0, ended=0.1
    )
    result = summarize(run, {"201": 10}, 5.0)
    return (
        {"phase": name, "concurrency": 16, "target_rate": rate}
        | result
        | {
            "server_cpu_ms_per_op": cpu,
            "server_cpu_ms_per_op_by_process": {"100": cpu},
            "pg_cpu_ms_per_op": pg,
            "emulator_cpu_ms_per_op": 0.5,
            "loadgen_cpu_ms_per_op": 0.5,
            "rss_kib": {"100": 102400},
            "amazon_new_connections_per_1000": 1.0,
            "db_new_connections_per_1000": 0.0,
            "statements_per_op": 6.0,
            "statements_per_op_without_transaction_control": 4.0,
            "top": [],
            "requests_per_op": 1,
        }
    )


def scenario(title: str, cpu: float, pg: float | None) -> dict[str, Any]:
    return {
        "title": title,
        "max_rate": 200.0,
        "headline_phase": "sequential",
        "phases": [
            phase("sequential", cpu, pg),
            phase("max", cpu * 0.9, pg),
            phase("open_50", cpu, pg, rate=100.0),
        ],
    }


def system(label: str, cpus: dict[str, float]) -> dict[str, Any]:
    return {
        "label": label,
        "command": ["serve"],
        "workers": 1,
        "versions": {"x": "1.0"},
        "rss_kib_at_end": {"100": 102400},
        "scenarios": {
            name: scenario(name.replace("_", " "), cpu, 1.0) for name, cpu in cpus.items()
        },
        "explain": {},
    }


def document(ours: dict[str, float], **peers: dict[str, float]) -> dict[str, Any]:
    from benchmarks import report

    doc: dict[str, Any] = {
        "schema": report.SCHEMA,
        "started_at": "2026-12-02T15:00:00+00:00",
        "finished_at": "2026-12-02T15:05:00+00:00",
        "git": {"commit": "0123456789abcdef", "branch": "bench", "dirty": False},
        "machine": {"cpus": 2},
        "load_average": {"before": [1.0, 1.0, 1.0], "after": [2.0, 1.5, 1.0]},
        "settings": {"database": "postgres", "workers": 1, "duration_s": 4.0, "concurrency": 16},
        "systems": {"ours": system("ours", ours)} | {n: system(n, c) for n, c in peers.items()},
    }
    doc["ratios"] = report.ratios(doc)
    return doc
