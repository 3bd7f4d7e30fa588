"""``GET /health`` (liveness) and ``GET /ready`` (readiness), separate on purpose.

- ``/health``: the process is up and serving; no I/O, so a database outage never makes an
  orchestrator restart healthy processes.
- ``/ready``: can this process do its work? ``database`` (one query), ``migrations`` (the
  database's Alembic revision equals the newest this code ships; read from one row), and
  ``redis`` when ``LWA_ACCOUNTS_REDIS_URL`` is set (a PING with a 1 s timeout). 200 with
  every check's result, or 503 ``application/problem+json`` (code ``not_ready``,
  ``Retry-After``) naming the failing checks. A load balancer routes by this one.

Probes poll every few seconds: a database outage is logged once through the database's
outage log (``store.db``), not once per probe, and the request log writes probes at DEBUG.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from lwa_accounts.errors import ServiceUnavailable
from lwa_accounts.outages import OutageLog
from lwa_accounts.store import probes
from lwa_accounts.web.problems import problem_response
from lwa_accounts.web.services import get_services

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

OK = "ok"
SKIPPED = "skipped"  # not checked: what it needs failed (migrations while the database is down)
REDIS_TIMEOUT = 1.0
RETRY_AFTER = "5"


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/health", response_model=Health, summary="Liveness: the process is up")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Ready,
    summary="Readiness: database, migrations at head, Redis when configured",
    responses={503: {"description": "A check failed; the problem names it."}},
)
async def ready(request: Request) -> Ready | Response:
    checks = await _database_checks(request)
    redis_client = redis_for(request)
    if redis_client is not None:
        checks["redis"] = await _redis_check(request, redis_client)
    failing = [name for name, result in checks.items() if result not in (OK, SKIPPED)]
    if not failing:
        return Ready(status="ready", checks=checks)
    return problem_response(
        503,
        "not_ready",
        title="Not ready",
        detail="Failing: " + ", ".join(f"{name} ({checks[name]})" for name in failing) + ".",
        extra={"checks": checks, "failing": failing},
        headers={"Retry-After": RETRY_AFTER},
    )


async def _database_checks(request: Request) -> dict[str, str]:
    database = get_services(request).database
    try:
        current = await probes.current_revision(database)
    except ServiceUnavailable:
        return {"database": "unavailable", "migrations": SKIPPED}
    except (SQLAlchemyError, OSError):
        logger.exception("readiness: the database failed in an unexpected way")
        return {"database": "error", "migrations": SKIPPED}
    head = probes.head_revision()
    if current == head:
        return {"database": OK, "migrations": OK}
    return {"database": OK, "migrations": f"at {current or 'nothing'}, code wants {head}"}


def redis_for(request: Request) -> aioredis.Redis | None:
    """This app's Redis client for the probe (made on first use, closed at shutdown)."""
    state = request.app.state
    url = get_services(request).settings.redis_url
    if not url:
        return None
    client: aioredis.Redis | None = getattr(state, "ready_redis", None)
    if client is None:
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
        state.ready_redis = client
        state.ready_redis_outages = OutageLog("redis (readiness)", logger)
    return client


async def _redis_check(request: Request, client: aioredis.Redis) -> str:
    outages: OutageLog = request.app.state.ready_redis_outages
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        outages.failed(error)
        return "unavailable"
    outages.succeeded()
    return OK


async def close(state: object) -> None:
    """At shutdown: close the probe's Redis client if one was made."""
    client: aioredis.Redis | None = getattr(state, "ready_redis", None)
    if client is not None:
        await client.aclose()
