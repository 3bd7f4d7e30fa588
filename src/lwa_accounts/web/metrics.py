"""``GET /metrics``: every metric of ``lwa_accounts.metrics`` in Prometheus' text format.

Protection, both optional and combinable: ``LWA_ACCOUNTS_METRICS_TOKEN`` (the scraper
sends ``Authorization: Bearer <token>``, compared in constant time; else 401) and
``LWA_ACCOUNTS_METRICS_LOOPBACK_ONLY`` (a peer outside 127.0.0.0/8 and ::1 gets 404, as
if there were nothing here). The peer is the one the app sees, so behind a trusted proxy
(``LWA_ACCOUNTS_TRUSTED_PROXIES``) it is the forwarded client.

At each scrape this worker refreshes what is not counted as it happens: the active
sessions (a count cached for ``LWA_ACCOUNTS_METRICS_SESSIONS_REFRESH_SECONDS``, so a
scrape every few seconds costs at most one indexed count per period and process) and its
pool numbers. In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) the answer adds up every
worker's files; the process that starts workers calls ``mark_worker_dead(pid)`` for one
that exited, so its live gauges drop out.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Sequence

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.responses import Response

from lwa_accounts import metrics
from lwa_accounts.compare import same_secret
from lwa_accounts.core.models import AuditEvent
from lwa_accounts.errors import NotAuthenticated, NotFound, ServiceUnavailable
from lwa_accounts.flows.sign_in_counts import sign_in_outcomes
from lwa_accounts.settings import Settings
from lwa_accounts.store import probes
from lwa_accounts.store.db import Database
from lwa_accounts.web.observe import note_account
from lwa_accounts.web.problems import problem_response
from lwa_accounts.web.services import get_services

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def mark_worker_dead(pid: int) -> None:
    """A worker exited: drop its live gauges (multiprocess mode only; else a no-op)."""
    directory = metrics.multiprocess_dir()
    if directory is not None:
        prometheus_multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def observe_audit(events: Sequence[AuditEvent]) -> None:
    """``Deps.observe``: sign-ins by method and outcome, and the account the request
    acted for (the request log's ``account_id`` after a sign-in)."""
    for method, outcome in sign_in_outcomes(events):
        metrics.sign_ins.labels(method, outcome).inc()
    for event in events:
        if event.account_id:
            note_account(event.account_id)
            break


def observe_throttle_refusal(kind: str) -> None:
    metrics.throttle_refusals.labels(kind).inc()


def set_pool(numbers: probes.PoolNumbers) -> None:
    in_use, overflow, size = numbers
    metrics.db_pool_in_use.set(in_use)
    metrics.db_pool_overflow.set(overflow)
    metrics.db_pool_size.set(size)


class SessionCount:
    """The active-session gauge, refreshed at most every ``refresh_seconds`` per process.

    A failed count (the database down) keeps the last value and is tried again at the
    next scrape; /ready reports the outage."""

    def __init__(self, refresh_seconds: float) -> None:
        self._refresh = refresh_seconds
        self._next = 0.0

    async def refresh(self, database: Database) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._refresh
        try:
            count = await probes.count_active_sessions(database, database.clock.now())
        except ServiceUnavailable:
            self._next = 0.0
            return
        metrics.active_sessions.set(count)


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(request: Request, settings: Settings) -> Response | None:
    """The answer for a scraper that may not read /metrics, or None."""
    peer = request.client.host if request.client else None
    if settings.metrics_loopback_only and not _loopback(peer):
        return problem_response(404, NotFound.code, detail=NotFound.default_detail)
    if settings.metrics_token is not None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        expected = settings.metrics_token.get_secret_value()
        if scheme.lower() != "bearer" or not same_secret(token.strip(), expected):
            return problem_response(
                401,
                NotAuthenticated.code,
                detail="Send 'Authorization: Bearer <metrics token>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return None


def render() -> bytes:
    directory = metrics.multiprocess_dir()
    if directory is None:
        return generate_latest(metrics.REGISTRY)
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    services = get_services(request)
    refused = refusal(request, services.settings)
    if refused is not None:
        return refused
    session_count: SessionCount | None = getattr(request.app.state, "session_count", None)
    if session_count is not None:
        await session_count.refresh(services.database)
    numbers = probes.pool_numbers(services.database)
    if numbers is not None:
        set_pool(numbers)
    return Response(render(), media_type=CONTENT_TYPE_LATEST)
