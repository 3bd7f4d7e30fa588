"""Every call the security suite makes to a flow endpoint, in one place.

Flow ids are bearer-like handles, so they travel in POST bodies, never in URL paths
(security.md item 1): ``POST /api/v1/flows/link|poll|register|handoff`` with ``flow_id``.
"""

from __future__ import annotations

from typing import Any

import httpx


async def link_flow(client: httpx.AsyncClient, flow_id: str, password: str) -> httpx.Response:
    """Prove the local password on a pending link flow."""
    return await client.post("/api/v1/flows/link", json={"flow_id": flow_id, "password": password})


async def poll_flow(client: httpx.AsyncClient, flow_id: str) -> httpx.Response:
    """The originating device's poll of a pending flow."""
    return await client.post("/api/v1/flows/poll", json={"flow_id": flow_id})


async def register_flow(
    client: httpx.AsyncClient, flow_id: str, fields: dict[str, Any]
) -> httpx.Response:
    """Finish a registration flow (or "create a separate account instead" of a link)."""
    return await client.post("/api/v1/flows/register", json={"flow_id": flow_id, **fields})


async def handoff_flow(client: httpx.AsyncClient, flow_id: str) -> httpx.Response:
    """A "finish on your phone" code for a pending device flow."""
    return await client.post("/api/v1/flows/handoff", json={"flow_id": flow_id})
