"""The load generator's job format, and a run against a real (fake) HTTP server."""

from __future__ import annotations

import asyncio
import json

import pytest

from benchmarks.explain import scans
from benchmarks.loadgen import Job, Step, fill, run_job


def test_a_job_survives_its_json_form() -> None:
    job = Job(
        base_url="http://127.0.0.1:1",
        mode="open",
        duration=2.0,
        ops=[
            [
                Step("POST", "/a", {"x": "y"}, "{}", (201,), ("code",)),
                Step("GET", "/b", {}, None, (200, 400)),
            ]
        ],
        rate=50.0,
        concurrency=4,
        cycle=True,
    )
    assert Job.from_json(json.loads(json.dumps(job.to_json()))) == job
    assert job.available == 10**9
    assert Job.from_json(job.to_json() | {"cycle": False}).available == 1


def test_later_steps_use_values_captured_from_earlier_answers() -> None:
    assert (
        fill('{"device_code": "{device_code}"}', {"device_code": "abc"}) == '{"device_code": "abc"}'
    )
    assert fill(None, {"a": "b"}) is None


def test_scans_name_the_indexes_a_plan_uses() -> None:
    plan = (
        "Nested Loop\n  ->  Index Scan using ix_sessions_token_hash on sessions\n"
        "  ->  Index Only Scan using pk_accounts on accounts\n  ->  Seq Scan on audit_events"
    )
    assert scans(plan) == [
        "Index Scan using ix_sessions_token_hash on sessions",
        "Index Only Scan using pk_accounts on accounts",
        "Seq Scan on audit_events",
    ]


async def _fake_server(answers: dict[str, tuple[int, bytes]], seen: list[str]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            request_line, *headers = head.decode().split("\r\n")
            length = next(
                (int(h.split(":")[1]) for h in headers if h.lower().startswith("content-length")), 0
            )
            body = await reader.readexactly(length) if length else b""
            path = request_line.split()[1]
            seen.append(f"{path} {body.decode()}")
            status, payload = answers[path]
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: {len(payload)}\r\n\r\n".encode() + payload
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_a_two_step_operation_against_a_real_server() -> None:
    pytest.importorskip("aiohttp")
    seen: list[str] = []
    server = await _fake_server(
        {
            "/authorize": (201, b'{"device_code": "dc-1"}'),
            "/token": (400, b'{"error": "authorization_pending"}'),
        },
        seen,
    )
    port = server.sockets[0].getsockname()[1]
    job = Job(
        base_url=f"http://127.0.0.1:{port}",
        mode="closed",
        duration=5.0,
        ops=[
            [
                Step("POST", "/authorize", {}, "{}", (201,), ("device_code",)),
                Step("POST", "/token", {}, '{"device_code": "{device_code}"}', (400,)),
            ]
        ]
        * 3,
        concurrency=1,
    )
    async with server:
        result = await run_job(job, wait_for_go=False)
    assert result["ok"] == 3
    assert result["failed"] == 0
    assert result["exhausted"]
    assert result["statuses"] == {"201": 3, "400": 3}
    assert seen[:2] == ["/authorize {}", '/token {"device_code": "dc-1"}']


async def test_an_unexpected_status_fails_the_operation_and_skips_its_later_steps() -> None:
    pytest.importorskip("aiohttp")
    seen: list[str] = []
    server = await _fake_server({"/a": (500, b"{}"), "/b": (200, b"{}")}, seen)
    port = server.sockets[0].getsockname()[1]
    job = Job(
        base_url=f"http://127.0.0.1:{port}",
        mode="open",
        rate=100.0,
        duration=0.05,
        ops=[[Step("GET", "/a", {}, None, (200,)), Step("GET", "/b", {}, None, (200,))]] * 5,
        concurrency=2,
    )
    async with server:
        result = await run_job(job, wait_for_go=False)
    assert result["ops"] == 5
    assert result["failed"] == 5
    assert all(s.startswith("/a") for s in seen)
