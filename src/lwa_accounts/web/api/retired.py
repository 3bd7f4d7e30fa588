"""Endpoints that took a secret handle in their URL path, kept for one release.

A flow id or an Amazon authorization id in a path ends up in access logs (security.md
item 1), so those endpoints moved: the handle now travels in the JSON body. Each old path
answers 410 problem+json, code ``moved``, with ``moved_to`` naming the new endpoint, and
never looks the handle up. Delete this module (and its include in ``web/app.py``) in the
next release.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from lwa_accounts.web.api.models import MOVED_NOTE, moved, problems

router = APIRouter(prefix="/api/v1")

# The new flow endpoints: a GET on one of them matches the old GET /flows/{flow_id}.
FLOW_ACTIONS = frozenset({"poll", "link", "register", "handoff", "email-code"})


@dataclass(frozen=True)
class Retired:
    method: str
    old_path: str
    new_path: str
    body: str  # the new JSON body, as the 410 tells it
    tag: str


RETIRED = (
    Retired("GET", "/flows/{flow_id}", "/api/v1/flows/poll", '{"flow_id"}', "amazon"),
    Retired(
        "POST", "/flows/{flow_id}/link", "/api/v1/flows/link", '{"flow_id", "password"}', "amazon"
    ),
    Retired(
        "POST", "/flows/{flow_id}/register", "/api/v1/flows/register", '{"flow_id", ...}', "amazon"
    ),
    Retired("POST", "/flows/{flow_id}/handoff", "/api/v1/flows/handoff", '{"flow_id"}', "devices"),
    Retired(
        "POST",
        "/amazon/device-authorizations/{authorization_id}/poll",
        "/api/v1/amazon/device-authorizations/poll",
        '{"authorization_id"}',
        "devices",
    ),
)


def _endpoint(retired: Retired) -> Callable[..., Awaitable[Response]]:
    """A handler taking the path's one parameter (declared in OpenAPI, never looked up)."""
    match = re.search(r"{(\w+)}", retired.old_path)
    assert match is not None
    name = match.group(1)

    async def endpoint(**path: str) -> Response:
        if retired.method == "GET" and path.get(name) in FLOW_ACTIONS:
            # GET on one of the new endpoints: the method is wrong, nothing moved.
            raise StarletteHTTPException(405, headers={"Allow": "POST"})
        raise moved(retired.new_path, retired.body)

    parameter = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str)
    endpoint.__signature__ = inspect.Signature([parameter], return_annotation=Response)  # type: ignore[attr-defined]
    endpoint.__name__ = "retired_" + retired.new_path.removeprefix("/api/v1/").replace("/", "_")
    return endpoint


for _retired in RETIRED:
    router.add_api_route(
        _retired.old_path,
        _endpoint(_retired),
        methods=[_retired.method],
        status_code=410,
        responses=problems(405, 410) if _retired.method == "GET" else problems(410),
        deprecated=True,
        tags=[_retired.tag],
        summary=f"Moved to POST {_retired.new_path}",
        description=MOVED_NOTE,
    )
