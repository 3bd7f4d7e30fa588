"""The results document's schema: what every run writes and every reader may rely on."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA = "lwa-accounts-bench/1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Latency(_Model):
    p50: float | None
    p90: float | None
    p99: float | None
    p999: float | None
    mean: float | None
    max: float | None


class Phase(_Model):
    phase: str
    concurrency: int
    ops: int = Field(ge=0)
    ok: int = Field(ge=0)
    failed: int = Field(ge=0)
    elapsed_s: float
    ok_per_s: float
    latency_ms: Latency
    service_ms: Latency
    statuses: dict[str, int]
    server_cpu_ms_per_op: float | None
    server_cpu_ms_per_op_by_process: dict[str, float | None]
    pg_cpu_ms_per_op: float | None
    emulator_cpu_ms_per_op: float | None
    loadgen_cpu_ms_per_op: float | None
    rss_kib: dict[str, int]
    amazon_new_connections_per_1000: float | None
    db_new_connections_per_1000: float | None
    statements_per_op: float | None
    statements_per_op_without_transaction_control: float | None
    top: list[dict[str, Any]]
    target_rate: float | None = None


class ScenarioResult(_Model):
    title: str
    max_rate: float
    headline_phase: str
    phases: list[Phase] = Field(min_length=1)


class SystemResult(_Model):
    label: str
    workers: int
    versions: dict[str, str]
    rss_kib_at_end: dict[str, int]
    scenarios: dict[str, ScenarioResult]
    explain: dict[str, Any]


class Git(_Model):
    commit: str
    branch: str
    dirty: bool


class LoadAverage(_Model):
    before: list[float] = Field(min_length=3, max_length=3)
    after: list[float] = Field(min_length=3, max_length=3)


class Document(_Model):
    schema_: str = Field(alias="schema", pattern=r"^lwa-accounts-bench/1$")
    started_at: str
    finished_at: str
    git: Git
    machine: dict[str, Any]
    load_average: LoadAverage
    settings: dict[str, Any]
    systems: dict[str, SystemResult] = Field(min_length=1)
    ratios: dict[str, dict[str, float | None]]
    growth: dict[str, Any] | None = None
    soak: dict[str, Any] | None = None
