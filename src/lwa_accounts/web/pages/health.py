"""GET /health: 200 once the database answers, 503 (with ``Retry-After``) while it does not.

A load balancer polls this every few seconds, so a database outage is logged once through
the database's outage log (``store.db``), not once per probe.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse, Response

from lwa_accounts.errors import ServiceUnavailable
from lwa_accounts.web.services import get_services

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get(
    "/health",
    response_model=Health,
    summary="Liveness and database check",
    responses={503: {"model": Health, "description": "The database does not answer."}},
)
async def health(request: Request) -> Health | Response:
    database = get_services(request).database
    try:
        await database.ping()
    except ServiceUnavailable as error:
        return _unavailable(error.retry_after)
    except (SQLAlchemyError, OSError):
        logger.exception("health check: the database failed in an unexpected way")
        return _unavailable(None)
    return Health(status="ok")


def _unavailable(retry_after: int | None) -> Response:
    headers = {"Retry-After": str(retry_after or ServiceUnavailable().retry_after)}
    return JSONResponse({"status": "unavailable"}, status_code=503, headers=headers)
