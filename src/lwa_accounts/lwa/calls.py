"""Every HTTP request to Login with Amazon, logged and counted in one place.

``LwaClient`` wraps its transport in ``Instrumented`` (one line in ``client.py``), so each
attempt, whichever method made it and whatever transport carries it (the pooled network
one, or the emulator in-process), is seen here: the endpoint by name (``tokeninfo``,
``profile``, ``codepair``; the token endpoint by grant: ``token`` for an authorization
code, ``token_refresh``, ``device_token`` for code-pair polls), the outcome, the time to
Amazon's answer and how many failed attempts came before (``client._get`` passes the
attempt number in the request's extensions). The log line is an ``amazon_call`` event
with no URL, query or body: nothing secret is ever in it.

Outcomes: ``ok`` (2xx), ``refused`` (other 4xx: an expired token, ``authorization_pending``),
``throttled`` (429), ``server_error`` (5xx), ``timeout`` (httpx's timeouts), ``cancelled``
(the client's ``asyncio.timeout`` deadline, or the caller went away), ``unreachable`` (any
other transport failure).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

import httpx

from lwa_accounts import metrics
from lwa_accounts.logs import get_logger
from lwa_accounts.lwa.protocol import Endpoints

ATTEMPT = "lwa_accounts.attempt"  # request extension: 0 for the first try, 1 for a retry...

_GRANTS = {
    "authorization_code": "token",
    "refresh_token": "token_refresh",
    "device_code": "device_token",
}

logger = get_logger("lwa_accounts.amazon")
_stdlib_logger = logging.getLogger("lwa_accounts.amazon")


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    return "refused"


def failure_outcome(error: BaseException) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.TransportError | httpx.DecodingError | OSError):
        return "unreachable"
    return "cancelled"  # CancelledError (our deadline or the caller), or a bug below us


class Instrumented(httpx.AsyncBaseTransport):
    """A transport that records each request it carries (see the module docstring)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, endpoints: Endpoints) -> None:
        self._inner = inner
        self._names = {
            endpoints.codepair: "codepair",
            endpoints.tokeninfo: "tokeninfo",
            endpoints.profile: "profile",
        }
        self._token = endpoints.token

    def endpoint(self, request: httpx.Request) -> str:
        url = str(request.url.copy_with(query=None, fragment=None))
        if url == self._token:
            try:
                body = request.content
            except httpx.RequestNotRead:  # a streamed body: we never send one
                return "token_other"
            form = dict(parse_qsl(body.decode("ascii", "replace")))
            return _GRANTS.get(form.get("grant_type", ""), "token_other")
        return self._names.get(url, "other")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        endpoint = self.endpoint(request)
        attempt = request.extensions.get(ATTEMPT, 0)
        retries = attempt if isinstance(attempt, int) and attempt > 0 else 0
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as error:
            record(endpoint, failure_outcome(error), None, time.perf_counter() - started, retries)
            raise
        record(
            endpoint,
            outcome_of(response.status_code),
            response.status_code,
            time.perf_counter() - started,
            retries,
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def record(endpoint: str, outcome: str, status: int | None, seconds: float, retries: int) -> None:
    metrics.amazon_calls.labels(endpoint, outcome).inc()
    metrics.amazon_call_duration.labels(endpoint, outcome).observe(seconds)
    if retries:
        metrics.amazon_retries.labels(endpoint).inc()
    level = logging.INFO if outcome in ("ok", "refused") else logging.WARNING
    if _stdlib_logger.isEnabledFor(level):
        logger.log(
            level,
            "amazon_call",
            endpoint=endpoint,
            outcome=outcome,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            retries=retries,
        )
