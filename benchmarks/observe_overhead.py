"""What the request log and the HTTP metrics cost per request (web/observe.py).

    .venv/bin/python benchmarks/observe_overhead.py [--requests 2000] [--rounds 7]

In one process, two copies of the app over httpx's ASGI transport (no sockets, no server:
only the app's own work and the in-process client's, the same in both): one as built by
``create_app``, one with ``ObserveMiddleware`` removed. Each round sends ``--requests``
requests to each, alternating which goes first, and reads this process's CPU time
(``time.process_time``, so other users of a shared machine count less than in wall time).
The request log renders JSON lines into memory at INFO, as production would write them.
Three requests: ``GET /health`` (almost nothing else, so the middleware shows most),
``GET /api/v1/me`` with a bearer token (a session lookup in SQLite) and ``GET /nope`` (404).
Prints the median CPU microseconds per request of each, and their difference. Then the
middleware alone, around an ASGI app that only answers (so nothing else is in the figure):
at INFO (the JSON line rendered) and at WARNING (only the metrics and the request id).

The machine is shared: the figures are indicative; the difference is what matters.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from lwa_accounts import logs, redaction
from lwa_accounts.testing import offline_settings
from lwa_accounts.web.app import create_app
from lwa_accounts.web.observe import ObserveMiddleware

PASSWORD = "bench-mark-passphrase-1"  # noqa: S105 - a throwaway benchmark account


def without_observe(app: FastAPI) -> FastAPI:
    app.user_middleware = [
        m for m in app.user_middleware if getattr(m, "cls", None) is not ObserveMiddleware
    ]
    return app


def log_to_memory() -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    handler.addFilter(redaction.RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the benchmark's own client
    return stream


async def cpu_per_request(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], count: int
) -> float:
    start = time.process_time()
    for _ in range(count):
        response = await client.get(path, headers=headers)
        assert response.status_code in (200, 404), response.text
    return (time.process_time() - start) / count * 1e6


async def main(requests: int, rounds: int) -> dict[str, Any]:
    stream = log_to_memory()
    root = Path(tempfile.mkdtemp(prefix="lwa-observe-bench-"))
    settings = offline_settings(root / "a", argon2_memory_kib=64, argon2_time_cost=1)
    apps = {
        "with": create_app(settings),
        "without": without_observe(
            create_app(settings.model_copy(update={"data_dir": root / "b"}))
        ),
    }
    results: dict[str, dict[str, list[float]]] = {}
    async with LifespanManager(apps["with"]) as with_app, LifespanManager(apps["without"]) as bare:
        clients = {
            name: httpx.AsyncClient(transport=httpx.ASGITransport(app=m.app), base_url="http://b")
            for name, m in (("with", with_app), ("without", bare))
        }
        tokens = {}
        for name, client in clients.items():
            body = {
                "username": "bench",
                "email": "b@example.org",
                "name": "B",
                "password": PASSWORD,
            }
            assert (await client.post("/api/v1/accounts", json=body)).status_code == 201
            signed = await client.post(
                "/api/v1/sessions", json={"username": "bench", "password": PASSWORD}
            )
            tokens[name] = signed.json()["session"]["token"]
        cases = {
            "GET /health": ("/health", False),
            "GET /api/v1/me": ("/api/v1/me", True),
            "GET /nope (404)": ("/nope", False),
        }
        for case, (path, auth) in cases.items():
            results[case] = {"with": [], "without": []}
            for name, client in clients.items():  # warm up
                await cpu_per_request(client, path, _headers(auth, tokens[name]), 100)
            for round_ in range(rounds):
                order = ("with", "without") if round_ % 2 == 0 else ("without", "with")
                for name in order:
                    headers = _headers(auth, tokens[name])
                    measured = await cpu_per_request(clients[name], path, headers, requests)
                    results[case][name].append(measured)
        for client in clients.values():
            await client.aclose()
    alone = await middleware_alone(20 * requests, rounds)
    lines = stream.getvalue().count("\n")
    report: dict[str, Any] = {"requests_per_round": requests, "rounds": rounds, "log_lines": lines}
    report["middleware alone (us per request)"] = alone
    for case, runs in results.items():
        with_us, without_us = statistics.median(runs["with"]), statistics.median(runs["without"])
        report[case] = {
            "with_us": round(with_us, 1),
            "without_us": round(without_us, 1),
            "overhead_us": round(with_us - without_us, 1),
            "with_runs": [round(x, 1) for x in runs["with"]],
            "without_runs": [round(x, 1) for x in runs["without"]],
        }
    return report


class _Route:
    path = "/api/v1/me"


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"] = _Route()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _ignore(message: Message) -> None:
    return None


async def _nothing() -> Message:
    return {"type": "http.request"}


async def middleware_alone(count: int, rounds: int) -> dict[str, float]:
    """CPU microseconds per request of the bare answer, and with the middleware around it."""
    observed = ObserveMiddleware(_answer)
    root = logging.getLogger()
    runs: dict[str, list[float]] = {"bare": [], "observed_info": [], "observed_warning": []}
    for _ in range(rounds):
        for name, app, level in (
            ("bare", _answer, logging.INFO),
            ("observed_info", observed, logging.INFO),
            ("observed_warning", observed, logging.WARNING),
        ):
            root.setLevel(level)
            start = time.process_time()
            for _ in range(count):
                scope: Scope = {
                    "type": "http",
                    "method": "GET",
                    "path": "/api/v1/me",
                    "root_path": "",
                    "headers": [(b"host", b"bench")],
                }
                await app(scope, _nothing, _ignore)
            runs[name].append((time.process_time() - start) / count * 1e6)
    root.setLevel(logging.INFO)
    return {name: round(statistics.median(values), 1) for name, values in runs.items()}


def _headers(auth: bool, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if auth else {}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.rounds)), indent=2))
