"""The floor: what an Amazon token sign-in costs with nothing around it.

Starlette + one shared httpx client (tokeninfo and profile overlapped, ``aud`` checked) +
asyncpg: one indexed SELECT of the account by Amazon user id, one INSERT of a session
(and one INSERT of the account on a first sign-in). ``GET /api/v1/me``: one indexed SELECT
joining the session to its account. Served by uvicorn with h11, as ours is.
"""

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

EMULATOR_URL = os.environ["BENCH_EMULATOR_URL"].rstrip("/")
CLIENT_IDS = frozenset(os.environ["BENCH_CLIENT_ID"].split(","))
DSN = f"postgresql://postgres@127.0.0.1:{os.environ['BENCH_DB_PORT']}/{os.environ['BENCH_DB_NAME']}"

SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_accounts (
    id bigserial PRIMARY KEY,
    amazon_user_id text NOT NULL UNIQUE,
    email text,
    name text
);
CREATE TABLE IF NOT EXISTS floor_sessions (
    token_hash bytea PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES floor_accounts(id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
"""
FIND = "SELECT id FROM floor_accounts WHERE amazon_user_id = $1"
CREATE = "INSERT INTO floor_accounts (amazon_user_id, email, name) VALUES ($1, $2, $3) RETURNING id"
START = (
    "INSERT INTO floor_sessions (token_hash, account_id, expires_at)"
    " VALUES ($1, $2, now() + interval '90 days')"
)
ME = (
    "SELECT a.id, a.email, a.name FROM floor_sessions s"
    " JOIN floor_accounts a ON a.id = s.account_id"
    " WHERE s.token_hash = $1 AND s.expires_at > now()"
)


class State:
    pool: asyncpg.Pool
    http: httpx.AsyncClient


state = State()


async def _no_reset(connection: asyncpg.Connection) -> None:
    return None


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # reset=None: no UNLISTEN/RESET ALL/CLOSE ALL/unlock on every release; nothing here
    # leaves session state behind.
    state.pool = await asyncpg.create_pool(DSN, min_size=1, max_size=10, reset=_no_reset)
    async with state.pool.acquire() as connection:
        await connection.execute(SCHEMA)
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=EMULATOR_URL, limits=limits, timeout=5) as state.http:
        yield
    await state.pool.close()


async def sign_in(request: Request) -> JSONResponse:
    token = (await request.json())["access_token"]
    params = {"access_token": token}
    try:
        info, profile = await asyncio.gather(
            state.http.get("/auth/o2/tokeninfo", params=params),
            state.http.get("/user/profile", params=params),
        )
    except httpx.HTTPError:
        return JSONResponse({"error": "amazon_unavailable"}, status_code=503)
    if info.status_code >= 500 or profile.status_code >= 500:
        return JSONResponse({"error": "amazon_unavailable"}, status_code=503)
    if (
        info.status_code != 200
        or info.json().get("aud") not in CLIENT_IDS
        or profile.status_code != 200
    ):
        return JSONResponse({"error": "invalid_token"}, status_code=401)
    person = profile.json()
    session_token = secrets.token_urlsafe(32)
    async with state.pool.acquire() as connection:
        digest = hashlib.sha256(session_token.encode()).digest()
        account_id = await connection.fetchval(FIND, person["user_id"])
        if account_id is not None:
            await connection.execute(START, digest, account_id)  # autocommit: one statement
        else:
            async with connection.transaction():
                account_id = await connection.fetchval(
                    CREATE, person["user_id"], person.get("email"), person.get("name")
                )
                await connection.execute(START, digest, account_id)
    return JSONResponse({"session": {"token": session_token}}, status_code=201)


async def me(request: Request) -> JSONResponse:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    async with state.pool.acquire() as connection:
        row = await connection.fetchrow(ME, hashlib.sha256(token.encode()).digest())
    if row is None:
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    return JSONResponse({"account": {"id": row["id"], "email": row["email"], "name": row["name"]}})


app = Starlette(
    routes=[
        Route("/api/v1/sessions/amazon", sign_in, methods=["POST"]),
        Route("/api/v1/me", me, methods=["GET"]),
        Route("/health", lambda request: JSONResponse({"ok": True})),
    ],
    lifespan=lifespan,
)
