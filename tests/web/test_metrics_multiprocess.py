"""prometheus_client's multiprocess mode for real: two ``lwa-accounts serve`` processes on
their own ports share one PROMETHEUS_MULTIPROC_DIR (what ``serve --workers N`` arranges),
one sign-in on each, and /metrics on either shows both. Then one process stops and
``mark_worker_dead`` drops its live gauges while its counters stay counted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.processes import CLI, free_port, running_server
from tests.web.metrics_helpers import Samples, parse, value

pytestmark = pytest.mark.slow

PASSWORD = "tangerine-elephant-42"


def environment(tmp_path: Path, multiproc: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(tmp_path / "var"),  # one SQLite file for both
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            "LWA_ACCOUNTS_METRICS_SESSIONS_REFRESH_SECONDS": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        }
    )
    return env


@contextmanager
def server(tmp_path: Path, env: dict[str, str], name: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        ready_url=url + "/ready",
        log=tmp_path / f"{name}.log",
    ) as process:
        yield url, process.pid


def scrape(url: str) -> Samples:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def signed_in(samples: Samples) -> float:
    return value(samples, "lwa_accounts_sign_ins_total", method="password", outcome="signed_in")


def test_two_processes_one_multiproc_dir_metrics_show_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = environment(tmp_path, multiproc)
    size = "lwa_accounts_db_pool_size"
    with ExitStack() as stack:
        first, first_pid = stack.enter_context(server(tmp_path, env, "first"))
        with ExitStack() as second_stack:
            second, second_pid = second_stack.enter_context(server(tmp_path, env, "second"))
            created = httpx.post(
                first + "/api/v1/accounts",
                json={
                    "username": "ada",
                    "email": "ada@example.org",
                    "name": "Ada",
                    "password": PASSWORD,
                },
                timeout=30,
            )
            assert created.status_code == 201, created.text
            assert signed_in(scrape(first)) == 0
            for url in (first, second):
                response = httpx.post(
                    url + "/api/v1/sessions",
                    json={"username": "ada", "password": PASSWORD},
                    timeout=30,
                )
                assert response.status_code == 201, response.text
            on_first, on_second = scrape(first), scrape(second)
            # The moment they happened, both sign-ins show on either process.
            assert signed_in(on_first) == signed_in(on_second) == 2
            for samples in (on_first, on_second):
                assert (
                    value(
                        samples,
                        "lwa_accounts_http_requests_total",
                        method="POST",
                        route="/api/v1/sessions",
                        status="201",
                    )
                    == 2
                )
            both_pools = value(on_first, size)
            assert both_pools == value(on_second, size) > 0
        # The second process stopped; what serve --workers does for a worker that exited:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc))
        from lwa_accounts.web.metrics import mark_worker_dead

        assert list(multiproc.glob(f"gauge_livesum_{second_pid}.db"))
        mark_worker_dead(second_pid)
        assert not list(multiproc.glob(f"gauge_livesum_{second_pid}.db"))
        after = scrape(first)
        assert value(after, size) == both_pools / 2  # only the live pool now
        assert signed_in(after) == 2  # a dead worker's counters still count
        assert first_pid != second_pid
