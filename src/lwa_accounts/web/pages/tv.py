"""/tv: the HTML5 TV app (static HTML, CSS and JavaScript talking to the JSON API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from lwa_accounts.flows.devices import clean_device_name
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

DEFAULT_DEVICE_NAME = "TV"
# How often a signed-in TV checks that its session still stands (a revoked TV goes back
# to the start screen at its next call).
RECHECK_SECONDS = 15
RECHECK_RANGE = range(1, 301)


@router.get("/tv")
async def tv_app(request: Request) -> Response:
    """``?name=`` names the device (shown on /activate and /account); ``?recheck=`` sets how
    often (seconds) a signed-in TV checks its session."""
    name = clean_device_name(request.query_params.get("name")) or DEFAULT_DEVICE_NAME
    asked = request.query_params.get("recheck", "")
    recheck = int(asked) if asked.isdigit() and int(asked) in RECHECK_RANGE else RECHECK_SECONDS
    return render(
        request,
        "tv/index.html",
        {
            "static_prefix": "/static",
            "api_prefix": "/api/v1",
            "device_name": name,
            "recheck_seconds": recheck,
        },
        headers={"Cache-Control": "no-store"},
    )
