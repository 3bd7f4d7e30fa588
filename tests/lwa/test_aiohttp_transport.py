"""The aiohttp transport under httpx, against raw sockets on loopback: what goes on the
wire, what comes back (decoded by httpx), and failures as httpx's transport errors."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from lwa_accounts.lwa.aiohttp_transport import AiohttpTransport
from tests.processes import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=AiohttpTransport(max_connections=4, keepalive_expiry=5),
        timeout=httpx.Timeout(1.0),
    )


async def test_a_request_and_a_gzip_answer_round_trip(client: httpx.AsyncClient) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        body = gzip.compress(json.dumps({"user_id": "amzn1.account.X"}).encode())
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async for base in _serve(handler):
        async with client:
            response = await client.post(
                f"{base}/auth/o2/token?x=1", data={"grant_type": "refresh_token"}
            )
    assert response.status_code == 200
    assert response.json() == {"user_id": "amzn1.account.X"}
    request = seen[0]
    assert request.startswith(b"POST /auth/o2/token?x=1 HTTP/1.1\r\n")
    assert b"content-type: application/x-www-form-urlencoded" in request.lower()
    assert request.endswith(b"\r\n\r\ngrant_type=refresh_token")


async def test_a_refused_connection_is_an_httpx_connect_error(client: httpx.AsyncClient) -> None:
    async with client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/auth/o2/tokeninfo")


async def test_a_silent_server_is_an_httpx_timeout(client: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)  # never answers within the client's 1 s read timeout

    async for base in _serve(handler):
        async with client:
            with pytest.raises(httpx.TimeoutException):
                await client.get(f"{base}/user/profile")


async def test_a_dropped_connection_is_an_httpx_transport_error(
    client: httpx.AsyncClient,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        writer.close()  # hangs up mid-body

    async for base in _serve(handler):
        async with client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"{base}/user/profile")
