"""ASGI middleware: case-insensitive paths (Amazon accepts /auth/O2/token) and injected faults.

Both work on the path relative to the emulator's root, so they behave the same standalone and
mounted under a prefix (Starlette keeps the full path in ``path`` and the prefix in
``root_path``).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lwa_accounts.emulator.records import Fault
from lwa_accounts.emulator.state import EmulatorState

CONTROL_PREFIX = "/_emulator"
# Path segments that carry an identifier (kept as typed): /_emulator/customers/{user_id}...
_ID_SEGMENT_AFTER = {"customers", "codes", "faults"}


class EmulatedConnectionDrop(ConnectionError):
    """Raised by a `drop` fault after the response head: the server then closes the socket."""


def relative_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def normalise_path(path: str) -> str:
    """Lower-case every literal segment; keep identifiers in /_emulator/ paths as typed."""
    segments = path.split("/")
    lowered = [segment.lower() for segment in segments]
    if len(lowered) > 3 and lowered[1] == CONTROL_PREFIX[1:] and lowered[2] in _ID_SEGMENT_AFTER:
        lowered[3] = segments[3]
    return "/".join(lowered)


class CaseInsensitivePaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root: str = scope.get("root_path", "")
            path = root + normalise_path(relative_path(scope))
            if path != scope["path"]:
                scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)


def _fault_body(fault: Fault, status: int) -> bytes:
    if fault.body is not None:
        return fault.body.encode()
    error = {503: "temporarily_unavailable"}.get(status, "server_error")
    if status < 500:
        error = "injected_fault"
    return json.dumps(
        {"error_description": f"Injected fault (HTTP {status})", "error": error}
    ).encode()


class FaultInjection:
    """Applies the first matching fault: wait, answer instead of the handler, or drop."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = relative_path(scope)
        # The control API is never faulted, so faults can always be switched off.
        fault = None if path.startswith(CONTROL_PREFIX) else self.state.take_fault(path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.drop:
            # Under uvicorn an exception after the response head closes the connection with
            # no body; under httpx.ASGITransport the exception reaches the client.
            start: Message = {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
            await send(start)
            raise EmulatedConnectionDrop(f"fault {fault.fault_id}: connection dropped")
        if fault.status is None and fault.body is None:
            await self.app(scope, receive, send)  # latency only
            return
        status = fault.status or 200
        body = _fault_body(fault, status)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
