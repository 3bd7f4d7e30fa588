"""One log line and the HTTP metrics for every request (the outermost middleware).

Pure ASGI (no ``BaseHTTPMiddleware``: no extra task, no buffering). For each HTTP request:

- a request id: the client's ``X-Request-ID`` when it is sane (1-64 characters of
  ``A-Z a-z 0-9 . _ -``, starting with a letter or digit), else a new random one; it is
  echoed in the response's ``X-Request-ID`` and joins every log line written meanwhile
  (``logs.current_request_id``);
- after the response: a ``request`` event with ``method``, ``route`` (the matched route's
  template, ``/api/v1/accounts/{account_id}``; never the raw path, which may carry a
  handle; ``unmatched`` when no route matched), ``status``, ``duration_ms`` and
  ``account_id`` when the request proved one (``note_account``, called by ``web/auth.py``
  and by the audit observer after a sign-in), at INFO (probes and scrapes at DEBUG; a 500,
  a bug, at ERROR; a 503 stays INFO: the outage log warns once for the whole outage);
- ``lwa_accounts_http_requests_total`` and ``..._http_request_duration_seconds`` by
  method, route template and status, recorded just before the response's last body
  message is handed to the server (else, after a failure, at the end): a client that has
  read a whole response finds it counted by the next scrape of any worker.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lwa_accounts import metrics
from lwa_accounts.logs import current_request_id, get_logger

HEADER = b"x-request-id"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Polled by machines every few seconds: logged at DEBUG, still counted.
QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})

logger = get_logger("lwa_accounts.requests")
_stdlib_logger = logging.getLogger("lwa_accounts.requests")


@dataclass(slots=True)
class RequestInfo:
    """What the request log learns while the request runs (shared with inner tasks: it
    is the same object in every copy of the context)."""

    request_id: str
    account_id: str | None = None


_current: ContextVar[RequestInfo | None] = ContextVar("lwa_request_info", default=None)


def note_account(account_id: str | None) -> None:
    """The account this request acts for (the first one noted wins)."""
    info = _current.get()
    if info is not None and info.account_id is None and account_id:
        info.account_id = account_id


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            try:
                candidate = bytes(value).decode("ascii")
            except UnicodeDecodeError:
                break
            if SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return secrets.token_hex(8)


def route_template(scope: Scope, entry_root_path: str = "") -> str:
    """The matched route's path template. Inside a mount the route's path is relative to
    it: the mount's prefix (what ``root_path`` grew by) goes first; a mount that is not a
    router (the static files) shows as ``<prefix>/{path}``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    root_path = str(scope.get("root_path", ""))
    prefix = root_path[len(entry_root_path) :] if root_path.startswith(entry_root_path) else ""
    if isinstance(route, Mount) or (route is None and prefix):
        # FastAPI leaves no route in the scope for a mounted app that is not a router.
        return f"{prefix or path}/{{path}}"
    if not isinstance(path, str):
        return UNMATCHED
    return prefix + path or "/"


def method_of(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in METHODS else "other"  # a label from a bounded set


class ObserveMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        entry_root_path = scope.get("root_path", "")
        info = RequestInfo(request_id_from(scope))
        info_token = _current.set(info)
        id_token = current_request_id.set(info.request_id)
        echoed = (HEADER, info.request_id.encode("ascii"))
        status = 500  # what the client gets if the app fails before answering
        seconds: float | None = None  # set once the request is counted

        def count() -> float:
            elapsed = time.perf_counter() - started
            labels = (method_of(scope), route_template(scope, entry_root_path), str(status))
            metrics.http_requests.labels(*labels).inc()
            metrics.http_request_duration.labels(*labels).observe(elapsed)
            return elapsed

        async def send_with_id(message: Message) -> None:
            nonlocal status, seconds
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Counted before the last bytes leave: once a client has the whole answer,
                # a scrape (on any worker) already shows it.
                seconds = count()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if seconds is None:  # no complete answer went out (a failure, a disconnect)
                seconds = count()
            route = route_template(scope, entry_root_path)
            method = method_of(scope)
            if status == 500:
                level = logging.ERROR  # a bug (its traceback is logged once, by problems.py)
            elif route in QUIET_ROUTES:
                level = logging.DEBUG
            else:
                # A 503 while a dependency is down too: the outage log warns once for all.
                level = logging.INFO
            if _stdlib_logger.isEnabledFor(level):
                logger.log(
                    level,
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                    account_id=info.account_id,
                )
            current_request_id.reset(id_token)
            _current.reset(info_token)
