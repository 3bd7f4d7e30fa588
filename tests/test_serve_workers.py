"""How many workers ``serve`` runs and what it refuses (``web/workers.py``), the app each
worker builds, the metrics directory, and the supervisor's worker-exit hook with real
worker processes (``web/supervisor.py``)."""

from __future__ import annotations

import importlib.util
import os
import pickle
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from uvicorn.config import Config
from uvicorn.supervisors.multiprocess import SIGNALS

from lwa_accounts.settings import EMULATED_WEB_CLIENT_ID, Settings
from lwa_accounts.testing import offline_settings
from lwa_accounts.web import supervisor
from lwa_accounts.web.app import create_app
from lwa_accounts.web.supervisor import Supervisor, metrics_directory, metrics_worker_exit
from lwa_accounts.web.workers import WorkerApp, WorkersRefused, plan_workers
from tests.processes import CLI, free_port, run_cli, running_server
from tests.workers_harness import alive, base_environment

SHAREABLE = {"lwa_client_id": EMULATED_WEB_CLIENT_ID, "redis_url": "redis://127.0.0.1:6379/0"}


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return offline_settings(tmp_path, **overrides)


# ---- how many workers ------------------------------------------------------------------


def test_one_worker_per_core_when_the_configuration_can_be_shared(tmp_path: Path) -> None:
    shareable = settings(tmp_path, **SHAREABLE)
    assert plan_workers(shareable, None, cores=2).workers == 2
    assert plan_workers(shareable, None, cores=2).note is None
    assert plan_workers(shareable, 3, cores=2).workers == 3  # asked for: given
    assert plan_workers(shareable, 1, cores=2).workers == 1


def test_the_default_falls_back_to_one_worker_and_says_why(tmp_path: Path) -> None:
    plan = plan_workers(settings(tmp_path), None, cores=4)
    assert plan.workers == 1
    assert plan.note is not None
    assert plan.note.startswith("serving with 1 worker, not 4: ")
    assert "emulated Amazon" in plan.note
    assert "LWA_ACCOUNTS_REDIS_URL" in plan.note
    assert plan_workers(settings(tmp_path), None, cores=1) == plan_workers(
        settings(tmp_path, **SHAREABLE), None, cores=1
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"lwa_client_id": None}, "emulated Amazon keeps its codes and tokens in one process"),
        ({"redis_url": None}, "without LWA_ACCOUNTS_REDIS_URL each worker would count"),
        ({"database_url": "sqlite+aiosqlite:///:memory:"}, "in-memory SQLite"),
    ],
)
def test_several_workers_are_refused_with_the_reason(
    tmp_path: Path, overrides: dict[str, Any], reason: str
) -> None:
    unshareable = settings(tmp_path, **{**SHAREABLE, **overrides})
    with pytest.raises(WorkersRefused, match=reason) as refused:
        plan_workers(unshareable, 2, cores=2)
    assert str(refused.value).startswith("2 workers cannot serve this configuration: ")
    assert str(refused.value).endswith("Serve with --workers 1.")
    assert plan_workers(unshareable, 1, cores=2).workers == 1


def test_sqlite_files_and_postgresql_can_be_shared(tmp_path: Path) -> None:
    for url in (None, "postgresql+asyncpg://db/lwa"):
        assert plan_workers(settings(tmp_path, **SHAREABLE, database_url=url), 2, 2).workers == 2


def test_serve_refuses_several_workers_for_the_development_defaults(tmp_path: Path) -> None:
    refused = run_cli("serve", "--workers", "2", "--port", str(free_port()), env=_env(tmp_path))
    assert refused.returncode == 2
    assert refused.stderr.startswith("lwa-accounts serve: 2 workers cannot serve this")
    assert "Serve with --workers 1." in refused.stderr
    assert not (tmp_path / "var").exists()  # refused before anything was created


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--workers", "0"), "--workers must be between 1 and 256"),
        (("--workers", "two"), "--workers takes a whole number"),
        (("--port", "70000"), "--port must be between 1 and 65535"),
        (("--forwarded-allow-ips", "10.0.0.1,proxy.internal"), "'proxy.internal' is not an IP"),
    ],
)
def test_serve_refuses_bad_arguments(
    tmp_path: Path, arguments: tuple[str, ...], message: str
) -> None:
    refused = run_cli("serve", *arguments, env=_env(tmp_path))
    assert refused.returncode == 2
    assert message in refused.stderr


def test_a_bad_workers_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        settings(tmp_path, workers=0)


def _env(tmp_path: Path) -> dict[str, str]:
    return base_environment(tmp_path / "var")


# ---- the app of each worker --------------------------------------------------------------


def test_a_worker_gets_the_parents_settings_exactly(tmp_path: Path) -> None:
    parent = settings(tmp_path, **SHAREABLE).model_copy(
        update={"public_url": "http://127.0.0.1:9123", "trusted_proxies": ("10.1.0.0/16",)}
    )
    parent.signing_keys  # noqa: B018 - the development key, read before the workers start
    factory = pickle.loads(pickle.dumps(WorkerApp(parent, parent_pid=os.getpid())))  # noqa: S301 - our own bytes, as uvicorn hands them to a worker
    assert factory.settings == parent
    assert factory.settings.signing_keys == parent.signing_keys


async def test_a_worker_never_migrates(tmp_path: Path, on_sqlite: None) -> None:
    """The parent migrated: a worker's lifespan must not (several would race)."""
    worker_settings = settings(tmp_path, lwa_client_id=EMULATED_WEB_CLIENT_ID)
    app = WorkerApp(worker_settings, parent_pid=os.getppid())()
    assert isinstance(app, FastAPI)
    async with LifespanManager(app):
        pass
    database = tmp_path / "lwa-accounts.db"
    with sqlite3.connect(database) as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert tables == []
    # The check can fail: the same settings' own lifespan (test environment) migrates.
    control = settings(tmp_path / "control", lwa_client_id=EMULATED_WEB_CLIENT_ID)
    async with LifespanManager(create_app(control)):
        pass
    with sqlite3.connect(tmp_path / "control" / "lwa-accounts.db") as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]


# ---- the metrics directory ------------------------------------------------------------


def test_a_fresh_metrics_directory_is_made_exported_and_removed() -> None:
    environ: dict[str, str] = {}
    with metrics_directory(environ) as path:
        assert path.is_dir()
        assert list(path.iterdir()) == []
        assert environ["PROMETHEUS_MULTIPROC_DIR"] == str(path)
    assert not path.exists()
    assert environ == {}


def test_a_given_metrics_directory_is_emptied_of_metric_files_and_kept(tmp_path: Path) -> None:
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old")
    (given / "README").write_text("not ours")
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(given)}
    with metrics_directory(environ) as path:
        assert path == given
        assert sorted(p.name for p in path.iterdir()) == ["README"]
    assert given.is_dir()
    assert environ == {"PROMETHEUS_MULTIPROC_DIR": str(given)}


def test_a_named_metrics_directory_that_did_not_exist_is_made_and_removed(tmp_path: Path) -> None:
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "new" / "metrics")}
    with metrics_directory(environ) as path:
        assert path.is_dir()
    assert not path.exists()


def test_the_metrics_hook_is_the_metrics_modules_when_it_exists() -> None:
    if importlib.util.find_spec(supervisor.METRICS_MODULE) is None:
        assert metrics_worker_exit() is None
    else:
        module = importlib.import_module(supervisor.METRICS_MODULE)
        assert metrics_worker_exit() is module.mark_worker_dead


# ---- the supervisor with real worker processes ---------------------------------------


async def tiny_app(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI app of the supervisor test's workers (imported by each spawned worker)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_every_worker_exit_is_reported_and_the_listening_socket_closed() -> None:
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    exited: list[int] = []
    config = Config(
        "tests.test_serve_workers:tiny_app", host="127.0.0.1", port=free_port(), workers=2
    )
    config.log_level = "warning"
    sock = config.bind_socket()
    parent = Supervisor(config, [sock], on_worker_exit=exited.append)
    try:
        parent.init_processes()
        first, second = (process.pid for process in parent.processes)
        assert first is not None
        assert second is not None
        os.kill(first, signal.SIGKILL)  # a worker crashes
        deadline = time.monotonic() + 10
        while alive(first):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        parent.keep_subprocess_alive()  # replaces it
        assert exited == [first]
        replacement = parent.processes[0].pid
        assert replacement not in (None, first)
        parent.terminate_all()
        assert sock.fileno() == -1  # the parent stopped listening before the workers drain
        parent.join_all()
        assert sorted(exited[1:]) == sorted([second, replacement])
        assert not parent.startup_failed
    finally:
        for process in parent.processes:
            if process.process.is_alive():
                process.kill()
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# ---- one worker stops cleanly too ------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_one_worker_exits_0_without_a_traceback_when_stopped(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """uvicorn raises the signal again after its graceful shutdown; SIGTERM's default
    action then killed the process (exit 143) and SIGINT printed a KeyboardInterrupt."""
    port = free_port()
    log = tmp_path / "serve.log"
    command = [*CLI, "serve", "--port", str(port)]
    with running_server(
        command, env=_env(tmp_path), ready_url=f"http://127.0.0.1:{port}/health", log=log
    ) as process:
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
    assert "Traceback" not in log.read_text()
    assert "(1 worker)" in log.read_text()
