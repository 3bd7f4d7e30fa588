"""``python -m benchmarks``: run the suite, write the JSON, the table and the plots."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import procstat, report
from benchmarks.gate import check_gate
from benchmarks.pgcluster import Cluster, wait_until_ready
from benchmarks.runner import ROOT, Plan, free_port, run_growth, run_soak, run_system
from benchmarks.scenarios import SCENARIOS
from benchmarks.systems import SYSTEMS, _base_env

RESULTS = ROOT / "benchmarks" / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="about a minute: ours only, short windows"
    )
    parser.add_argument("--systems", default=None, help="comma list of " + ",".join(SYSTEMS))
    parser.add_argument("--scenarios", default=None, help="comma list of " + ",".join(SCENARIOS))
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--duration", type=float, default=None, help="seconds per window")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="passed to serve when it accepts it")
    parser.add_argument(
        "--no-sequential", action="store_true", help="skip the one-at-a-time window"
    )
    parser.add_argument(
        "--gate", action="store_true", help="exit 1 when a CPU-per-operation goal is missed"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default benchmarks/results/)"
    )
    parser.add_argument(
        "--growth",
        default=None,
        help="comma list of database sizes to seed and measure ours at, e.g. 1000,100000,1000000",
    )
    parser.add_argument(
        "--soak", type=int, default=0, help="RSS after this many returning sign-ins (e.g. 100000)"
    )
    parser.add_argument(
        "--report-only",
        type=Path,
        default=None,
        help="regenerate docs/benchmarks.md and the plots from this results JSON; run nothing",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md and plots"
    )
    return parser.parse_args(argv)


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_total_kib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git() -> dict[str, Any]:
    def out(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git, our own arguments
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    return {
        "commit": out("rev-parse", "HEAD"),
        "branch": out("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(out("status", "--porcelain", "--", "src")),
    }


def _stop_on_signal(signum: int, frame: object) -> None:
    # A terminated run still leaves through the finally blocks: they stop the servers, the
    # emulator and the PostgreSQL cluster it started.
    raise SystemExit(f"bench: stopped by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    if args.report_only is not None:
        document = json.loads(args.report_only.read_text())
        report.validate(document)
        report.update_docs(document, args.report_only.resolve())
        print(report.summary_text(document))
        return 0
    systems = (
        args.systems.split(",") if args.systems else (["ours"] if args.quick else list(SYSTEMS))
    )
    scenarios = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    for name in systems:
        if name not in SYSTEMS:
            print(f"bench: unknown system {name!r} (one of {', '.join(SYSTEMS)})", file=sys.stderr)
            return 2
    for name in scenarios:
        if name not in SCENARIOS:
            print(
                f"bench: unknown scenario {name!r} (one of {', '.join(SCENARIOS)})", file=sys.stderr
            )
            return 2
    if args.database == "sqlite" and systems != ["ours"]:
        print(
            "bench: the peers run on PostgreSQL only; use --systems ours with sqlite",
            file=sys.stderr,
        )
        return 2
    plan = Plan(
        systems=systems,
        scenarios=scenarios,
        database=args.database,
        duration=args.duration or (1.0 if args.quick else 4.0),
        concurrency=args.concurrency,
        fractions=(0.5,) if args.quick else (0.25, 0.5, 0.75),
        workers=args.workers,
        sequential=not args.no_sequential,
    )
    run_tag = datetime.now(UTC).strftime("%H%M%S")
    started = datetime.now(UTC)
    load_before = procstat.loadavg()
    cluster = None
    emulator_port = free_port()
    from benchmarks.runner import process
    from benchmarks.systems import Launch

    emulator_env = _base_env() | {
        "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
        "LWA_ACCOUNTS_ENV": "development",
    }
    emulator_launch = Launch(
        [
            sys.executable,
            "-m",
            "lwa_accounts.cli",
            "emulator",
            "serve",
            "--port",
            str(emulator_port),
        ],
        emulator_env,
    )
    results: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    try:
        growth_sizes = [int(x) for x in args.growth.split(",")] if args.growth else []
    except ValueError:
        print(f"bench: --growth takes sizes like 1000,100000, not {args.growth!r}", file=sys.stderr)
        return 2
    try:
        if args.database == "postgres":
            cluster = Cluster.create(free_port())
            cluster.start()
            wait_until_ready(cluster)
        with process(
            "emulator", emulator_launch, f"http://127.0.0.1:{emulator_port}/_emulator/clock"
        ) as emulator:
            for name in systems:
                results[name] = run_system(name, plan, emulator, emulator_port, cluster, run_tag)
            if growth_sizes:
                extra["growth"] = run_growth(
                    growth_sizes, plan, emulator, emulator_port, cluster, run_tag
                )
            if args.soak:
                extra["soak"] = run_soak(args.soak, plan, emulator, emulator_port, cluster, run_tag)
    finally:
        if cluster is not None:
            cluster.stop()
    document = {
        "schema": report.SCHEMA,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "git": git(),
        "machine": machine(),
        "load_average": {"before": load_before, "after": procstat.loadavg()},
        "settings": {
            "quick": args.quick,
            "database": plan.database,
            "duration_s": plan.duration,
            "concurrency": plan.concurrency,
            "fractions": list(plan.fractions),
            "workers": plan.workers,
            "sequential": plan.sequential,
            "systems": systems,
            "scenarios": scenarios,
            "postgres": "own cluster, pg_stat_statements preloaded" if cluster else None,
        },
        "systems": results,
    } | extra
    document["ratios"] = report.ratios(document)
    report.validate(document)
    out = args.out or RESULTS / ("quick.json" if args.quick else f"full-{plan.database}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(
        f"bench: wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}",
        file=sys.stderr,
    )
    print(report.summary_text(document))
    if not args.no_docs:
        report.update_docs(document, out)
    if args.gate:
        failures = check_gate(document)
        for failure in failures:
            print(f"bench gate: {failure}")
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    time.tzset()
    sys.exit(main())
