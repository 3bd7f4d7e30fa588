"""``lwa-accounts serve --workers 2`` as real processes: both workers serve, one SQLite file
stays correct under writes from both, the parent's settings (``--forwarded-allow-ips``, the
``--port`` public URL) reach every worker, and SIGTERM or SIGINT lets the request in flight finish
while new connections are refused and the whole process tree exits 0.

Which worker answered is read from /proc (the process holding the server end of the TCP
connection), so each check is made on a connection held by each worker."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.workers_harness import (
    Deployment,
    alive,
    connections_per_worker,
    mint_amazon_token,
    request,
    workers_deployment,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis]

PASSWORD = "tangerine-elephant-42"
JSON = {"content-type": "application/json"}
TRUSTED_PROXY = "127.0.0.2"  # the loopback address the tests' "proxy" connects from


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp_path = tmp_path_factory.mktemp("workers")
    with workers_deployment(
        tmp_path,
        serve_args=("--forwarded-allow-ips", TRUSTED_PROXY),
        LWA_ACCOUNTS_REGISTRATION_LIMIT_PER_IP="1000/hour",
    ) as d:
        yield d


def _account(name: str) -> bytes:
    return json.dumps(
        {"username": name, "email": f"{name}@example.com", "name": name, "password": PASSWORD}
    ).encode()


def test_two_workers_each_serve_requests(deployment: Deployment) -> None:
    pids = deployment.worker_pids()
    assert len(pids) == 2
    held = connections_per_worker(deployment)
    assert set(held) == set(pids)  # each worker process accepted and answered a connection
    for connection in held.values():
        connection.close()


def test_one_sqlite_file_stays_correct_under_writes_from_both_workers(
    deployment: Deployment,
) -> None:
    """Writers of two processes queue on SQLite's file lock (BEGIN IMMEDIATE + busy
    timeout): parallel registrations through both workers all land, one username is taken
    once, and every account signs in."""
    per_worker = [connections_per_worker(deployment) for _ in range(4)]  # 4 per worker
    connections = [c for held in per_worker for c in held.values()]
    assert len(connections) == 8
    names = [f"par{n}" for n in range(24)]

    def register(job: tuple[int, str]) -> int:
        n, name = job
        status, _, _ = request(
            connections[n % 8], "POST", "/api/v1/accounts", body=_account(name), headers=JSON
        )
        return status

    # One connection per thread: an http.client connection is not shared between threads.
    def run(jobs: list[tuple[int, str]]) -> list[int]:
        by_connection: dict[int, list[tuple[int, str]]] = {}
        for job in jobs:
            by_connection.setdefault(job[0] % 8, []).append(job)
        with ThreadPoolExecutor(8) as pool:
            results = pool.map(lambda js: [register(j) for j in js], by_connection.values())
        return [status for statuses in results for status in statuses]

    assert sorted(run(list(enumerate(names)))) == [201] * len(names)
    same = run([(n, "samename") for n in range(8)])  # one attempt on each connection
    assert sorted(same) == [201] + [409] * 7

    def sign_in(job: tuple[int, str]) -> int:
        n, name = job
        body = json.dumps({"username": name, "password": PASSWORD}).encode()
        status, _, _ = request(connections[n], "POST", "/api/v1/sessions", body=body, headers=JSON)
        return status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(sign_in, list(enumerate(names[:8]))))
    assert statuses == [201] * 8
    for connection in connections:
        connection.close()
    with sqlite3.connect(deployment.database) as db:
        rows = db.execute(
            "SELECT username, count(*) FROM accounts WHERE username LIKE 'par%' "
            "OR username = 'samename' GROUP BY username"
        ).fetchall()
    assert dict(rows) == dict.fromkeys([*names, "samename"], 1)


def test_every_worker_believes_forwarded_headers_only_from_the_trusted_proxy(
    deployment: Deployment,
) -> None:
    """``--forwarded-allow-ips 127.0.0.2``: X-Forwarded-For/-Proto from 127.0.0.2 are
    believed, from 127.0.0.1 (any other peer) ignored, on each worker."""
    forwarded = {"x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https"}
    for source, believed in ((TRUSTED_PROXY, True), ("127.0.0.1", False)):
        held = connections_per_worker(deployment, source=source)
        assert len(held) == 2
        for connection in held.values():
            # Starlette redirects /signin/ to /signin with the scheme it was given.
            status, headers, _ = request(connection, "GET", "/signin/", headers=forwarded)
            assert status == 307
            assert headers["location"].startswith("https://" if believed else "http://")
            # A refused Amazon callback is audited with the client's address.
            status, _, _ = request(
                connection, "GET", "/auth/amazon/callback?code=c&state=forged", headers=forwarded
            )
            assert status == 400
            with sqlite3.connect(deployment.database) as db:
                (ip,) = db.execute(
                    "SELECT ip FROM audit_events ORDER BY id DESC LIMIT 1"
                ).fetchone()
            assert ip == ("198.51.100.7" if believed else source)
            connection.close()


def test_every_worker_has_the_public_url_of_the_port_it_serves(deployment: Deployment) -> None:
    """No LWA_ACCOUNTS_PUBLIC_URL: Amazon is sent back to the --host/--port address by
    every worker, not to the default port 8000."""
    for connection in connections_per_worker(deployment).values():
        status, headers, _ = request(connection, "GET", "/auth/amazon/start")
        assert status in (302, 303, 307)
        redirect_uri = parse_qs(urlsplit(headers["location"]).query)["redirect_uri"][0]
        assert redirect_uri == deployment.base + "/auth/amazon/callback"
        connection.close()


# ---- stopping ------------------------------------------------------------------------


def _refused(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/health")
        connection.getresponse().read()
    except ConnectionRefusedError:
        return True
    except OSError:  # reset or timed out: not (yet) a clean refusal
        return False
    connection.close()
    return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_finishes_the_request_in_flight_refuses_new_ones_and_exits_0(
    tmp_path: Path, stop: signal.Signals
) -> None:
    latency_ms = 4000
    with workers_deployment(tmp_path) as deployment:
        pids = deployment.worker_pids()
        fault = httpx.post(
            deployment.amazon + "/_emulator/faults",
            json={"path": "/auth/o2/tokeninfo", "latency_ms": latency_ms},
            timeout=10,
        )
        assert fault.status_code == 201, fault.text
        token = mint_amazon_token(deployment.amazon)
        answer: list[httpx.Response] = []

        def sign_in() -> None:
            answer.append(
                httpx.post(
                    deployment.base + "/api/v1/sessions/amazon",
                    json={"access_token": token, "device_name": "TV"},
                    timeout=30,
                )
            )

        in_flight = threading.Thread(target=sign_in)
        in_flight.start()
        deadline = time.monotonic() + 20
        while httpx.get(deployment.amazon + "/_emulator/faults", timeout=5).json()[0]["hits"] < 1:
            assert time.monotonic() < deadline, "the sign-in never reached Amazon"
            time.sleep(0.05)
        sent = time.monotonic()  # the request is now waiting on Amazon
        deployment.process.send_signal(stop)

        refused_at = None
        while in_flight.is_alive() and time.monotonic() < sent + 10:
            if _refused(deployment.port):
                refused_at = time.monotonic()
                break
            time.sleep(0.05)
        in_flight.join(timeout=30)
        finished_at = time.monotonic()

        assert answer, "the request in flight got no answer"
        assert answer[0].status_code == 201, answer[0].text  # Grace's first sign-in
        assert refused_at is not None, "new connections were still accepted while draining"
        assert refused_at < finished_at  # refused while the old request was still running
        assert deployment.process.wait(timeout=15) == 0
        assert time.monotonic() - sent < 15
        assert not [pid for pid in pids if alive(pid)], "a worker outlived its parent"
        assert _refused(deployment.port)


def test_workers_stop_by_themselves_when_their_parent_is_killed(tmp_path: Path) -> None:
    with workers_deployment(tmp_path) as deployment:
        pids = deployment.worker_pids()
        os.kill(deployment.process.pid, signal.SIGKILL)
        deployment.process.wait(timeout=10)
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "orphaned workers kept running"
            time.sleep(0.1)
