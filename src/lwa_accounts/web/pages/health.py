"""GET /health: 200 once the database answers."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse, Response

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
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        logger.exception("health check: database unreachable")
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return Health(status="ok")
