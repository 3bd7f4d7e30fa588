"""Injected faults: a book of faults (set through /_emulator/faults) and the ASGI middleware
that applies them: wait, answer instead of the endpoint, or drop the connection."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lwa_accounts.emulator.middleware import CONTROL_PREFIX, relative_path


@dataclass
class Fault:
    fault_id: int
    path: str
    status: int | None
    latency_ms: int
    times: int | None
    ratio: float
    body: str | None
    drop: bool
    hits: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "id": self.fault_id,
            "path": self.path,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "times": self.times,
            "ratio": self.ratio,
            "body": self.body,
            "drop": self.drop,
            "hits": self.hits,
        }


class FaultBook:
    """The active faults, in the order they were added; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._random = random.Random()  # fault ratios are not security decisions

    def add(
        self,
        path: str,
        status: int | None,
        latency_ms: int,
        times: int | None,
        ratio: float,
        body: str | None,
        drop: bool,
    ) -> Fault:
        with self._lock:
            fault = Fault(
                fault_id=self._next_id,
                path=path.lower().rstrip("/") or "/",
                status=status,
                latency_ms=latency_ms,
                times=times,
                ratio=ratio,
                body=body,
                drop=drop,
            )
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    def take(self, path: str) -> Fault | None:
        """The fault that fires for this request path (counted), or None."""
        wanted = path.lower().rstrip("/") or "/"
        with self._lock:
            for fault in self._faults:
                if fault.path != wanted or fault.times == 0:
                    continue
                if fault.ratio < 1.0 and self._random.random() >= fault.ratio:
                    continue
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                return fault
            return None


class EmulatedConnectionDrop(ConnectionError):
    """Raised by a `drop` fault after the response head: the server then closes the socket."""


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

    def __init__(self, app: ASGIApp, book: FaultBook) -> None:
        self.app = app
        self.book = book

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = relative_path(scope)
        # The control API is never faulted, so faults can always be switched off.
        fault = None if path.startswith(CONTROL_PREFIX) else self.book.take(path)
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
