"""How many worker processes ``lwa-accounts serve`` runs, and the app each worker builds.

Several workers share only what lives outside a process: the database and Redis. Two things
of a development set-up live inside one: the embedded emulated Amazon (its codes, tokens
and sessions) and, without Redis, the brute-force throttle's counters (each worker would
count on its own, multiplying every limit by the number of workers: security.md item 8).
Such a configuration gets one worker; asking for more is refused with the reason.

SQLite is shared correctly: every transaction takes the file's write lock
(``BEGIN IMMEDIATE``) and waits up to the busy timeout for another process's, so writers of
several workers queue instead of failing (tests/test_serve_workers.py proves it with
parallel registrations spread over two workers). An in-memory SQLite database is one
process's own and is refused.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from lwa_accounts import redaction
from lwa_accounts.settings import Settings

# How often a worker checks that the process that started it is still there.
PARENT_CHECK_SECONDS = 1.0


def available_cores() -> int:
    """The cores this process may run on (a cpuset or taskset narrows it; CPU quotas such
    as ``docker run --cpus`` do not: set LWA_ACCOUNTS_WORKERS there)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def one_process_reasons(settings: Settings) -> list[str]:
    """Why this configuration cannot be served by several processes (empty: it can)."""
    reasons = []
    if settings.amazon_emulated:
        reasons.append(
            "the embedded emulated Amazon keeps its codes and tokens in one process "
            "(configure a Login with Amazon client with LWA_ACCOUNTS_LWA_CLIENT_ID, or run "
            "`lwa-accounts emulator serve` apart and point LWA_ACCOUNTS_LWA_API_URL at it)"
        )
    if settings.redis_url is None:
        reasons.append(
            "without LWA_ACCOUNTS_REDIS_URL each worker would count sign-in attempts on its "
            "own, letting as many times more password guesses through as there are workers"
        )
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or "mode=memory" in str(url.query)
    ):
        reasons.append("an in-memory SQLite database belongs to one process")
    return reasons


class WorkersRefused(ValueError):
    """``--workers N`` (N > 1) for a configuration one process must serve."""


@dataclass(frozen=True)
class WorkerPlan:
    workers: int
    note: str | None = None  # why fewer workers than cores were chosen, for the operator


def plan_workers(settings: Settings, requested: int | None, cores: int) -> WorkerPlan:
    """``requested`` (``--workers``, else LWA_ACCOUNTS_WORKERS; None: one per core)."""
    reasons = one_process_reasons(settings)
    if requested is None:
        if cores > 1 and reasons:
            return WorkerPlan(1, f"serving with 1 worker, not {cores}: " + "; ".join(reasons))
        return WorkerPlan(cores)
    if requested > 1 and reasons:
        raise WorkersRefused(
            f"{requested} workers cannot serve this configuration: "
            + "; ".join(reasons)
            + ". Serve with --workers 1."
        )
    return WorkerPlan(requested)


@dataclass(frozen=True)
class WorkerApp:
    """The app factory each worker process calls (uvicorn's ``factory=True``).

    It is pickled to the spawned worker with uvicorn's config, so every worker gets the
    parent's settings exactly, ``--host/--port`` public-URL and ``--forwarded-allow-ips``
    overrides included, and the development secret key the parent already read.
    """

    settings: Settings
    parent_pid: int

    def __call__(self) -> object:
        from lwa_accounts.web.app import create_app

        redaction.install()  # a spawned worker never ran cli.main
        _exit_with_parent(self.parent_pid)
        # The parent migrated before starting workers: none of them races another.
        return create_app(self.settings, migrate_on_start=False)


def _exit_with_parent(parent_pid: int) -> None:
    """A worker whose parent died (SIGKILL, OOM) is left with no one to stop it: it then
    shuts down gracefully by itself instead of serving on as an orphan."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
