"""PNG plots: latency against offered load per scenario, CPU per operation by system."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_all(document: dict[str, Any], directory: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    systems = document["systems"]
    scenarios: list[str] = []
    for system in systems.values():
        scenarios += [s for s in system["scenarios"] if s not in scenarios]
    written: list[Path] = []

    columns = 4 if len(scenarios) > 4 else len(scenarios)
    rows = (len(scenarios) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for index, scenario in enumerate(scenarios):
        axis = axes[index // columns][index % columns]
        for system in systems.values():
            result = system["scenarios"].get(scenario)
            if result is None:
                continue
            opened = [
                p
                for p in result["phases"]
                if p["phase"].startswith("open_") and p["latency_ms"]["p50"] is not None
            ]
            if not opened:
                continue
            rates = [p["target_rate"] for p in opened]
            (line,) = axis.plot(
                rates,
                [p["latency_ms"]["p50"] for p in opened],
                marker="o",
                label=f"{system['label']} p50",
            )
            axis.plot(
                rates,
                [p["latency_ms"]["p99"] for p in opened],
                marker="x",
                linestyle="--",
                color=line.get_color(),
                label=f"{system['label']} p99",
            )
        titles = [
            x["scenarios"][scenario]["title"]
            for x in systems.values()
            if scenario in x["scenarios"]
        ]
        axis.set_title(titles[0] if titles else scenario, fontsize=9)
        axis.set_xlabel("offered load, ops/s (25/50/75 % of max)", fontsize=8)
        axis.set_ylabel("latency ms (from intended send)", fontsize=8)
        axis.set_ylim(bottom=0)
        axis.tick_params(labelsize=7)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=6)
    for index in range(len(scenarios), rows * columns):
        axes[index // columns][index % columns].axis("off")
    figure.suptitle(
        f"Latency vs load ({document['settings']['database']}, {document['started_at'][:16]} UTC)",
        fontsize=11,
    )
    figure.tight_layout()
    path = directory / f"{stem}-latency.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    written.append(path)

    names = list(systems)
    figure, axis = plt.subplots(figsize=(max(8.0, 1.2 * len(scenarios) + 2), 5.0))
    width = 0.8 / len(names)
    for offset, name in enumerate(names):
        system = systems[name]
        xs, server, pg = [], [], []
        for index, scenario in enumerate(scenarios):
            result = system["scenarios"].get(scenario)
            if result is None:
                continue
            head = next(p for p in result["phases"] if p["phase"] == result["headline_phase"])
            xs.append(index + offset * width)
            server.append(head["server_cpu_ms_per_op"] or 0.0)
            pg.append(head["pg_cpu_ms_per_op"] or 0.0)
        bars = axis.bar(xs, server, width, label=f"{system['label']} server")
        axis.bar(
            xs,
            pg,
            width,
            bottom=server,
            color=bars.patches[0].get_facecolor() if bars.patches else None,
            alpha=0.45,
            label=f"{system['label']} PostgreSQL",
        )
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(scenarios))])
    axis.set_xticklabels([s.replace("_", "\n") for s in scenarios], fontsize=7)
    axis.set_ylabel("CPU ms per operation (sequential)")
    axis.set_title("CPU per operation by system (server + PostgreSQL)")
    axis.legend(fontsize=7, ncols=2)
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    path = directory / f"{stem}-cpu.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    written.append(path)
    if document.get("growth"):
        written.append(_growth(plt, document["growth"], directory / f"{stem}-growth.png"))
    return written


def _growth(plt: Any, growth: dict[str, Any], path: Path) -> Path:
    """CPU per operation (server + PostgreSQL) against the rows already stored."""
    sizes = [int(size) for size in growth["sizes"]]
    figure, axis = plt.subplots(figsize=(7.0, 4.2))
    names = {name for entry in growth["sizes"].values() for name in entry["scenarios"]}
    for name in sorted(names):
        cpu = []
        for entry in growth["sizes"].values():
            found = entry["scenarios"].get(name, {})
            cpu.append(
                (found.get("server_cpu_ms_per_op") or 0.0) + (found.get("pg_cpu_ms_per_op") or 0.0)
            )
        axis.plot(sizes, cpu, marker="o", label=name.replace("_", " "))
    axis.set_xscale("log")
    axis.set_ylim(bottom=0)
    axis.set_xlabel("accounts, Amazon links and sessions stored")
    axis.set_ylabel("CPU ms per operation (server + PG, sequential)")
    axis.set_title("Growth: CPU per operation against database size")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
