"""The load generator: its own process, so its CPU is never counted as the server's.

    python -m benchmarks.loadgen JOB.json

reads a job (see ``Job``), opens its client, prints ``ready`` and waits for one line on
stdin before it starts, so the caller can read the server's CPU counters right before and
right after the measured window. It then prints one JSON line: what ``summarize`` says.
An operation is one or more HTTP requests in order (device authorize, then poll); a later
step may use a value from the previous step's JSON answer (``{name}`` in its body).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.schedule import Run, Send, closed_loop, open_model
from benchmarks.stats import summarize_ms


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    expect: tuple[int, ...]
    capture: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(
            method=data["method"],
            path=data["path"],
            headers=dict(data.get("headers") or {}),
            body=data.get("body"),
            expect=tuple(data["expect"]),
            capture=tuple(data.get("capture") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "expect": list(self.expect),
            "capture": list(self.capture),
        }


Op = list[Step]


@dataclass(frozen=True)
class Job:
    base_url: str
    mode: str  # "open" or "closed"
    duration: float
    ops: list[Op]
    rate: float = 0.0  # open model: operations per second
    concurrency: int = 1  # closed loop: workers; open model: connections
    cycle: bool = False  # the operations may be repeated (no single-use token in them)
    max_in_flight: int = 512

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(
            base_url=data["base_url"],
            mode=data["mode"],
            duration=float(data["duration"]),
            ops=[[Step.from_json(s) for s in op] for op in data["ops"]],
            rate=float(data.get("rate", 0.0)),
            concurrency=int(data.get("concurrency", 1)),
            cycle=bool(data.get("cycle", False)),
            max_in_flight=int(data.get("max_in_flight", 512)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "mode": self.mode,
            "duration": self.duration,
            "ops": [[s.to_json() for s in op] for op in self.ops],
            "rate": self.rate,
            "concurrency": self.concurrency,
            "cycle": self.cycle,
            "max_in_flight": self.max_in_flight,
        }

    @property
    def available(self) -> int:
        return 10**9 if self.cycle else len(self.ops)


def fill(template: str | None, captured: dict[str, str]) -> str | None:
    if template is None or not captured:
        return template
    for name, value in captured.items():
        template = template.replace("{" + name + "}", value)
    return template


def summarize(run: Run, statuses: dict[str, int], cpu_ms: float) -> dict[str, Any]:
    ok = [o for o in run.outcomes if o.ok]
    elapsed = run.elapsed
    return {
        "ops": len(run.outcomes),
        "ok": len(ok),
        "failed": len(run.outcomes) - len(ok),
        "unfinished": run.unfinished,
        "exhausted": run.exhausted,
        "elapsed_s": round(elapsed, 4),
        "ok_per_s": round(len(ok) / elapsed, 2) if elapsed > 0 else 0.0,
        "latency_ms": summarize_ms([o.latency for o in ok]),
        "service_ms": summarize_ms([o.service for o in ok]),
        "statuses": statuses,
        "loadgen_cpu_ms": round(cpu_ms, 1),
    }


async def run_job(job: Job, wait_for_go: bool = True) -> dict[str, Any]:
    import aiohttp

    limit = job.concurrency if job.mode == "closed" else max(job.concurrency, 1)
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=30)
    statuses: dict[str, int] = {}
    async with aiohttp.ClientSession(
        base_url=job.base_url,
        connector=connector,
        timeout=timeout,
        skip_auto_headers=["User-Agent"],
    ) as session:

        async def send(index: int) -> bool:
            op = job.ops[index % len(job.ops)]
            captured: dict[str, str] = {}
            ok = True
            for step in op:
                headers = {k: fill(v, captured) or "" for k, v in step.headers.items()}
                async with session.request(
                    step.method, step.path, data=fill(step.body, captured), headers=headers
                ) as response:
                    raw = await response.read()
                    key = str(response.status)
                    statuses[key] = statuses.get(key, 0) + 1
                    if response.status not in step.expect:
                        ok = False
                        break
                    if step.capture:
                        answer = json.loads(raw)
                        captured.update({name: str(answer[name]) for name in step.capture})
            return ok

        if wait_for_go:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time()
        run = await _run(job, send)
        used = (time.process_time() - cpu) * 1000
    return summarize(run, statuses, used)


async def _run(job: Job, send: Send) -> Run:
    if job.mode == "open":
        return await open_model(
            send,
            rate=job.rate,
            duration=job.duration,
            available=job.available,
            max_in_flight=job.max_in_flight,
        )
    if job.mode == "closed":
        return await closed_loop(
            send, concurrency=job.concurrency, duration=job.duration, available=job.available
        )
    raise ValueError(f"unknown mode {job.mode!r}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m benchmarks.loadgen JOB.json", file=sys.stderr)
        return 2
    job = Job.from_json(json.loads(Path(argv[0]).read_text()))
    result = asyncio.run(run_job(job))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
