"""Caps on what a request may bring, checked before routing (security.md item 22).

``BodyLimitMiddleware`` refuses bodies over 64 KiB (declared or streamed) with 413;
``HeaderLimitMiddleware`` refuses too many or too large headers with 431. Both answer
problem+json under ``/api`` and a minimal page elsewhere (``edge_refusal``), and close the
connection.
"""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lwa_accounts.errors import PayloadTooLarge
from lwa_accounts.web.problems import problem_response

MAX_BODY_BYTES = 64 * 1024


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    await self._refuse(scope, receive, send, declared)
                    return
        # Read the (small) body up front: an oversized stream is refused before the app
        # sees any of it (FastAPI would turn an error raised mid-read into a vague 400).
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                await self._refuse(scope, receive, send, received)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: int) -> None:
        if declared < 0:
            status, code, title = 400, "bad_request", "Bad request"
            detail = "The Content-Length header is not valid."
        else:
            error = PayloadTooLarge()
            status, code, title = error.status, error.code, error.title
            detail = f"{error.detail} The limit is {self.limit} bytes."
        response = edge_refusal(scope, status, code, title=title, detail=detail)
        await response(scope, receive, send)


def edge_refusal(scope: Scope, status: int, code: str, *, title: str, detail: str) -> Response:
    """A refusal from a middleware, before routing: problem+json under ``/api``, else a
    minimal self-contained page (no request object or templates this far out). The
    connection is closed: the rest of what the client sends is not worth reading."""
    path: str = scope.get("path", "")
    response: Response
    if path == "/api" or path.startswith("/api/"):
        response = problem_response(status, code, title=title, detail=detail)
    else:
        response = HTMLResponse(
            f"<!doctype html><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>"
            '<p><a href="/">Go to the start page</a></p>',
            status_code=status,
        )
    response.headers["Connection"] = "close"
    return response


class HeaderLimitMiddleware:
    """Refuse requests whose headers are too many or too big with 431 (security.md item
    22), before anything reads them. The HTTP server also cuts off far larger header
    blocks while still reading them (see ``web/server.py``); this check holds under any
    ASGI server, and in tests."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_count: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
            size = sum(len(name) + len(value) + 4 for name, value in headers)  # ": ", CRLF
            if len(headers) > self.max_count or size > self.max_bytes:
                detail = (
                    f"The request headers are too large: at most {self.max_count} headers "
                    f"and {self.max_bytes} bytes in all."
                )
                response = edge_refusal(
                    scope,
                    431,
                    "request_headers_too_large",
                    title="Request headers too large",
                    detail=detail,
                )
                if scope["type"] == "http":
                    await response(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1009})
                return
        await self.app(scope, receive, send)
