"""An ``httpx.AsyncBaseTransport`` over aiohttp's pooled client: the LWA client's network I/O.

Measured against the emulated Amazon over loopback (``benchmarks/perf/http_clients.py``),
httpx's own HTTP/1.1 stack (httpcore) costs several times aiohttp's CPU per call. The LWA
client keeps httpx's API (and tests keep injecting any ``httpx.AsyncBaseTransport``, such
as the emulator under ``ASGITransport`` or a ``MockTransport``); only the bytes on the wire
go through aiohttp. Failures become httpx's transport errors, which the client already
turns into ``AmazonUnavailable``.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx

# aiohttp's errors as httpx's, so the LWA client's failure handling stays the same.
_CONNECT_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ClientProxyConnectionError)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp ``ClientSession`` (keep-alive pool, ``max_connections`` sockets)."""

    def __init__(self, *, max_connections: int, keepalive_expiry: float) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop (aiohttp binds to it).
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_expiry,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes by the response's headers
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # the LWA client keeps no cookies
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as response:
                content = await response.read()
                return httpx.Response(
                    status_code=response.status,
                    headers=[(k.decode(), v.decode()) for k, v in response.raw_headers],
                    content=content,
                    request=request,
                )
        except _CONNECT_ERRORS as error:
            raise httpx.ConnectError(str(error), request=request) from error
        except aiohttp.ServerTimeoutError as error:
            raise httpx.ReadTimeout(str(error), request=request) from error
        except TimeoutError as error:
            raise httpx.TimeoutException(str(error), request=request) from error
        except aiohttp.ClientError as error:
            raise httpx.NetworkError(str(error), request=request) from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            await asyncio.sleep(0)  # let the connector close its sockets
