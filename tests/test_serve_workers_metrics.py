"""/metrics of ONE ``lwa-accounts serve --workers 2`` process tree adds up both workers.

Real processes (Redis, a standalone emulated Amazon: ``tests/workers_harness.py``), with
``PROMETHEUS_MULTIPROC_DIR`` naming a directory that does not exist yet (serve creates it).
Password sign-ins go over connections held by each worker (which worker holds one is read
from /proc); right after each, the *other* worker is scraped, so a sign-in must show on
every worker the moment its answer arrives. Then one worker is SIGKILLed: the supervisor
replaces it and calls ``mark_worker_dead``, so the counters keep the dead worker's counts
while its live gauges (pool numbers, the active-session count) leave the totals, as
docs/operations.md "Metrics, health and readiness" says."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.processes import free_port, run_cli
from tests.web.metrics_helpers import Samples, parse, value
from tests.workers_harness import (
    Deployment,
    alive,
    amazon_client_environment,
    base_environment,
    connections_per_worker,
    owner,
    request,
    wait_for_workers,
    workers_deployment,
)

pytestmark = pytest.mark.slow

PASSWORD = "tangerine-elephant-42"
JSON = {"content-type": "application/json"}
ROUNDS = 4  # connections per worker, one sign-in on each: N = 8
SIGN_IN = {"method": "POST", "route": "/api/v1/sessions", "status": "201"}
POOL_SIZE = "lwa_accounts_db_pool_size"
ACTIVE = "lwa_accounts_active_sessions"
LIMIT = "1000/hour"  # the sign-ins below come from one IP for one account


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with workers_deployment(
        tmp_path,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics" / "multiproc"),
        # Each worker counts the sessions once (at its first scrape), then caches: which
        # worker measured last is then up to the test.
        LWA_ACCOUNTS_METRICS_SESSIONS_REFRESH_SECONDS="3600",
        LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT_IP=LIMIT,
        LWA_ACCOUNTS_PASSWORD_LIMIT_PER_IP=LIMIT,
        LWA_ACCOUNTS_PASSWORD_LIMIT_PER_ACCOUNT=LIMIT,
    ) as d:
        yield d


def multiproc_dir(deployment: Deployment) -> Path:
    return deployment.data_dir.parent / "metrics" / "multiproc"


def scrape(connection: http.client.HTTPConnection) -> Samples:
    status, headers, body = request(connection, "GET", "/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain")
    return parse(body.decode())


def signed_in(samples: Samples) -> float:
    return value(samples, "lwa_accounts_sign_ins_total", method="password", outcome="signed_in")


def sign_in_requests(samples: Samples) -> float:
    return value(samples, "lwa_accounts_http_requests_total", **SIGN_IN)


def sign_in(connection: http.client.HTTPConnection) -> None:
    body = json.dumps({"username": "ada", "password": PASSWORD}).encode()
    status, _, answer = request(connection, "POST", "/api/v1/sessions", body=body, headers=JSON)
    assert status == 201, answer


def live_sessions(deployment: Deployment) -> int:
    with sqlite3.connect(deployment.database) as db:
        (count,) = db.execute("SELECT count(*) FROM sessions WHERE revoked_at IS NULL").fetchone()
    return int(count)


def live_gauge_files(directory: Path, pid: int) -> list[str]:
    return sorted(path.name for path in directory.glob(f"gauge_live*_{pid}.db"))


@pytest.mark.redis
def test_metrics_add_up_both_workers_and_drop_a_killed_workers_gauges(
    deployment: Deployment,
) -> None:
    directory = multiproc_dir(deployment)
    created = httpx.post(
        deployment.base + "/api/v1/accounts",
        json={"username": "ada", "email": "ada@example.org", "name": "Ada", "password": PASSWORD},
        timeout=30,
    )
    assert created.status_code == 201, created.text

    held = [connections_per_worker(deployment) for _ in range(ROUNDS)]
    first, second = pids = sorted(held[0])
    assert all(sorted(round_) == pids for round_ in held)  # every round: one on each worker
    other = {first: second, second: first}

    # The second worker counts the sessions now (its first scrape), before any sign-in.
    sessions_second_saw = live_sessions(deployment)
    samples = scrape(held[0][second])
    assert (signed_in(samples), value(samples, ACTIVE)) == (0, sessions_second_saw)

    count = 0
    sessions_first_saw = None
    for round_ in held:
        for pid in pids:
            sign_in(round_[pid])
            count += 1
            # At once, on the worker that did not serve it.
            samples = scrape(round_[other[pid]])
            assert (signed_in(samples), sign_in_requests(samples)) == (count, count)
            if sessions_first_saw is None and other[pid] == first:
                # The first worker's first scrape, after sign-ins: the most recent count.
                sessions_first_saw = live_sessions(deployment)
                assert value(samples, ACTIVE) == sessions_first_saw > sessions_second_saw
    n = count
    assert n == 2 * ROUNDS

    # Fresh connections land on either worker; every scrape shows the whole total.
    answered: dict[int, int] = {}
    for _ in range(60):
        connection = http.client.HTTPConnection("127.0.0.1", deployment.port, timeout=30)
        samples = scrape(connection)
        worker = owner(connection, pids)
        connection.close()
        assert worker is not None
        answered[worker] = answered.get(worker, 0) + 1
        assert (signed_in(samples), sign_in_requests(samples)) == (n, n)
        assert value(samples, ACTIVE) == sessions_first_saw  # cached in both workers
        if len(answered) == 2 and min(answered.values()) >= 2:
            break
    assert sorted(answered) == pids, answered
    for pid in pids:  # one set of files per worker
        assert (directory / f"counter_{pid}.db").exists()
        assert live_gauge_files(directory, pid) == [
            f"gauge_livemostrecent_{pid}.db",
            f"gauge_livesum_{pid}.db",
        ]
    pools = value(scrape(held[0][second]), POOL_SIZE)
    assert pools > 0  # a SQLite file has a queue pool
    assert pools % 2 == 0  # two equal pools, one per worker

    # SIGKILL the first worker: no shutdown of its own, the supervisor cleans up after it.
    os.kill(first, signal.SIGKILL)
    for round_ in held:
        round_.pop(first).close()
    deadline = time.monotonic() + 30
    while alive(first) or live_gauge_files(directory, first):
        assert time.monotonic() < deadline, (
            f"worker {first} alive: {alive(first)}, its live gauges: "
            f"{live_gauge_files(directory, first)}"
        )
        time.sleep(0.05)
    assert (directory / f"counter_{first}.db").exists()  # its counts stay counted

    after_kill = scrape(held[0][second])
    assert (signed_in(after_kill), sign_in_requests(after_kill)) == (n, n)  # not backwards
    # The dead worker measured the sessions last; with its gauges gone the live worker's
    # older measurement is the most recent left (``livemostrecent``).
    assert value(after_kill, ACTIVE) == sessions_second_saw

    wait_for_workers(deployment, 2)
    replacement = next(pid for pid in deployment.worker_pids() if pid != second)
    assert replacement != first
    fresh = connections_per_worker(deployment)
    assert sorted(fresh) == sorted([second, replacement])
    for pid in (replacement, second):
        sign_in(fresh[pid])
    on_replacement = scrape(fresh[replacement])  # its first scrape: it counts the sessions
    on_second = scrape(fresh[second])
    for samples in (on_replacement, on_second):
        assert (signed_in(samples), sign_in_requests(samples)) == (n + 2, n + 2)
        assert value(samples, POOL_SIZE) == pools  # two live pools, the dead one not summed
        assert value(samples, ACTIVE) == live_sessions(deployment)
    assert not live_gauge_files(directory, first)
    for connection in [*fresh.values(), *(c for round_ in held for c in round_.values())]:
        connection.close()


@pytest.mark.redis
def test_a_request_is_counted_on_every_worker_before_its_answer_arrives(
    deployment: Deployment,
) -> None:
    """The HTTP counter, not only the sign-ins: a request answered by one worker shows in
    the other's scrape sent the moment the answer is read. A cheap route makes the race
    window (counting after the last bytes left) wide: it was missed in about a third of
    such scrapes before ``web/observe.py`` counted ahead of the last body message."""
    held = connections_per_worker(deployment)
    (_, answering), (_, scraped) = held.items()
    health = {"method": "GET", "route": "/health", "status": "200"}
    before = value(scrape(scraped), "lwa_accounts_http_requests_total", **health)
    for n in range(1, 51):
        status, _, _ = request(answering, "GET", "/health")
        assert status == 200
        samples = scrape(scraped)
        assert value(samples, "lwa_accounts_http_requests_total", **health) == before + n
    for connection in held.values():
        connection.close()


def test_a_metrics_directory_that_cannot_be_made_is_a_clear_refusal(tmp_path: Path) -> None:
    """Before anything listens: one sentence and exit 2, not an import-time traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = base_environment(
        tmp_path / "var",
        LWA_ACCOUNTS_REDIS_URL=REDIS_URL,
        PROMETHEUS_MULTIPROC_DIR=str(blocker / "multiproc"),
        **amazon_client_environment(f"http://127.0.0.1:{free_port()}"),
    )
    port = str(free_port())
    refused = run_cli("serve", "--workers", "2", "--port", port, env=env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        f"lwa-accounts serve: cannot create PROMETHEUS_MULTIPROC_DIR "
        f"'{blocker / 'multiproc'}': Not a directory.\n"
    )
    assert "Traceback" not in refused.stdout + refused.stderr
    assert not (tmp_path / "var").exists()  # nothing made, nothing migrated
