"""Every call the security suite makes to a flow endpoint whose path is moving, in one place.

Flow ids are bearer-like handles; they are moving out of URL paths into POST bodies
(issue 9, hole 3). These functions are written for today's paths; when the move lands only
this module changes:

    link_flow     POST /api/v1/flows/{id}/link {"password"}  ->  POST /api/v1/flows/link
    poll_flow     GET  /api/v1/flows/{id}                    ->  POST /api/v1/flows/poll
    register_flow POST /api/v1/flows/{id}/register {...}     ->  POST /api/v1/flows/register
    handoff_flow  POST /api/v1/flows/{id}/handoff            ->  POST /api/v1/flows/handoff
"""

from __future__ import annotations

from typing import Any

import httpx


async def link_flow(client: httpx.AsyncClient, flow_id: str, password: str) -> httpx.Response:
    """Prove the local password on a pending link flow."""
    return await client.post(f"/api/v1/flows/{flow_id}/link", json={"password": password})


async def poll_flow(client: httpx.AsyncClient, flow_id: str) -> httpx.Response:
    """The originating device's poll of a pending flow."""
    return await client.get(f"/api/v1/flows/{flow_id}")


async def register_flow(
    client: httpx.AsyncClient, flow_id: str, fields: dict[str, Any]
) -> httpx.Response:
    """Finish a registration flow (or "create a separate account instead" of a link)."""
    return await client.post(f"/api/v1/flows/{flow_id}/register", json=fields)


async def handoff_flow(client: httpx.AsyncClient, flow_id: str) -> httpx.Response:
    """A "finish on your phone" code for a pending device flow."""
    return await client.post(f"/api/v1/flows/{flow_id}/handoff")
