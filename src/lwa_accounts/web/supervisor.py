"""The parent of ``serve --workers N``: uvicorn's process supervisor, plus what a clean stop
and per-worker metrics need.

- On SIGTERM/SIGINT the parent closes its copy of the listening socket before telling the
  workers to stop, so once the workers stop accepting, new connections are refused instead
  of waiting in a backlog nobody reads; each worker finishes its requests in flight
  (``shutdown_grace_seconds``), then runs the app's lifespan shutdown (pools, clients).
- Every worker that exits (stopped, crashed and replaced, retired by SIGHUP's rolling
  restart) is reported to ``lwa_accounts.web.metrics.mark_worker_dead`` when that module
  exists, so its live gauges leave the multiprocess metrics.
- ``metrics_directory``: the ``PROMETHEUS_MULTIPROC_DIR`` every worker writes its metrics to.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess

logger = logging.getLogger("uvicorn.error")

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_MODULE = "lwa_accounts.web.metrics"

WorkerExit = Callable[[int], None]


class Supervisor(Multiprocess):
    def __init__(
        self, config: Config, sockets: list[socket.socket], on_worker_exit: WorkerExit | None
    ) -> None:
        super().__init__(config, sockets)
        self._on_worker_exit = on_worker_exit
        self._running: set[int] = set()

    @property
    def startup_failed(self) -> bool:
        """A worker failed before serving (bad settings, database down at start-up)."""
        return any(process.exitcode == STARTUP_FAILURE for process in self.processes)

    def init_processes(self) -> None:
        super().init_processes()
        self._note_exits()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()  # replaces a worker that died
        self._note_exits()

    def handle_signals(self) -> None:
        super().handle_signals()  # SIGHUP replaces every worker, SIGTTOU retires one
        self._note_exits()

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def join_all(self) -> None:
        super().join_all()
        for pid in sorted(self._running):
            self._worker_exited(pid)
        self._running.clear()

    def _note_exits(self) -> None:
        running = {process.pid for process in self.processes if process.pid is not None}
        for pid in sorted(self._running - running):
            self._worker_exited(pid)
        self._running = running

    def _worker_exited(self, pid: int) -> None:
        if self._on_worker_exit is None:
            return
        try:
            self._on_worker_exit(pid)
        except Exception:  # metrics bookkeeping must never stop the supervisor
            logger.exception("could not clear the metrics of worker %s", pid)


def metrics_worker_exit() -> WorkerExit | None:
    """``lwa_accounts.web.metrics.mark_worker_dead`` if this build has it, else None."""
    if importlib.util.find_spec(METRICS_MODULE) is None:
        return None
    module = importlib.import_module(METRICS_MODULE)
    hook: WorkerExit | None = getattr(module, "mark_worker_dead", None)
    return hook


@contextmanager
def metrics_directory(environ: MutableMapping[str, str] = os.environ) -> Iterator[Path]:
    """An empty ``PROMETHEUS_MULTIPROC_DIR`` exported to the workers for the block.

    The one named by the variable has its metric files (``*.db``, what prometheus_client
    writes) deleted, so a previous run's counters do not come back; nothing else in it is
    touched. Without the variable a fresh temporary directory is made. A directory made
    here is removed afterwards; the variable is restored either way.
    """
    given = environ.get(METRICS_DIR_VARIABLE)
    if given:
        path = Path(given)
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="lwa-accounts-metrics-"))
        created = True
    environ[METRICS_DIR_VARIABLE] = str(path)
    try:
        yield path
    finally:
        if given:
            environ[METRICS_DIR_VARIABLE] = given
        else:
            environ.pop(METRICS_DIR_VARIABLE, None)
        if created:
            shutil.rmtree(path, ignore_errors=True)
