"""The scenarios: what one operation is, and the data each needs, prepared before (never
inside) the measured window: customers and fresh Amazon tokens minted through the
emulator's control API, accounts and sessions made through the server's own API."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.emulator import Control, customer
from benchmarks.loadgen import Op, Step
from benchmarks.systems import System

PASSWORD = "bench-mark-passphrase-1"  # noqa: S105 - throwaway benchmark accounts
JSON = {"content-type": "application/json"}
RETURNING_POOL = 32  # distinct returning customers, each signed in once beforehand
SETUP_CONCURRENCY = 8
_tags = itertools.count()


@dataclass
class Env:
    system: System
    base_url: str
    control: Control
    run_tag: str
    state: dict[str, Any] = field(default_factory=dict)

    def tag(self) -> str:
        return f"{self.run_tag}{next(_tags):03d}"


def _calls(
    base_url: str, calls: list[tuple[str, str, Any, dict[str, str]]]
) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        slots = asyncio.Semaphore(SETUP_CONCURRENCY)
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

            async def one(
                method: str, path: str, body: Any, headers: dict[str, str]
            ) -> httpx.Response:
                async with slots:
                    return await client.request(method, path, json=body, headers=headers)

            return await asyncio.gather(*(one(*c) for c in calls))

    return asyncio.run(run())


def _expect(responses: list[httpx.Response], *statuses: int) -> list[Any]:
    for response in responses:
        if response.status_code not in statuses:
            raise SystemExit(
                f"bench: setup call {response.request.method} {response.request.url.path} "
                f"answered {response.status_code}: {response.text[:300]}"
            )
    return [r.json() if r.content else None for r in responses]


def amazon_op(token: str, expect: tuple[int, ...] = (201,)) -> Op:
    body = json.dumps({"access_token": token})
    return [Step("POST", "/api/v1/sessions/amazon", JSON, body, expect)]


def sign_in_amazon(env: Env, tokens: list[str]) -> list[str]:
    """Sessions for ``tokens`` (returning or first sign-ins), through the system's API."""
    answers = _expect(
        _calls(
            env.base_url,
            [("POST", "/api/v1/sessions/amazon", {"access_token": t}, {}) for t in tokens],
        ),
        201,
    )
    return [a["session"]["token"] for a in answers]


def _returning_pool(env: Env) -> list[str]:
    if "returning" not in env.state:
        tag = env.tag()
        people = [customer(tag, "r", i) for i in range(RETURNING_POOL)]
        env.control.add_customers(people)
        made = [p["user_id"] for p in people]
        sign_in_amazon(env, env.control.mint(made))
        env.state["returning"] = made
    ids: list[str] = env.state["returning"]
    return ids


def returning_ops(env: Env, n: int) -> list[Op]:
    ids = _returning_pool(env)
    tokens = env.control.mint([ids[i % len(ids)] for i in range(n)])
    return [amazon_op(t) for t in tokens]


def first_ops(env: Env, n: int) -> list[Op]:
    tag = env.tag()
    people = [customer(tag, "f", i) for i in range(n)]
    env.control.add_customers(people)
    return [amazon_op(t) for t in env.control.mint([p["user_id"] for p in people])]


def session_check_ops(env: Env, n: int) -> list[Op]:
    # Customers of their own, signed in once: a peer may end a user's other sessions when
    # that user signs in again (Django's session hash follows the password field).
    if "checked_sessions" not in env.state:
        tag = env.tag()
        people = [customer(tag, "s", i) for i in range(RETURNING_POOL)]
        env.control.add_customers(people)
        env.state["checked_sessions"] = sign_in_amazon(
            env, env.control.mint([p["user_id"] for p in people])
        )
    return [
        [Step("GET", "/api/v1/me", env.system.session_headers(t), None, (200,))]
        for t in env.state["checked_sessions"]
    ]


def _password_accounts(env: Env, count: int, kind: str) -> list[dict[str, str]]:
    tag = env.tag()
    accounts = [
        {
            "username": f"{kind}{tag}{i}",
            "email": f"{kind}{tag}{i}@bench.example.com",
            "name": f"Bench {i}",
            "password": PASSWORD,
        }
        for i in range(count)
    ]
    _expect(_calls(env.base_url, [("POST", "/api/v1/accounts", a, {}) for a in accounts]), 201)
    return accounts


def password_ops(env: Env, n: int) -> list[Op]:
    if "password_accounts" not in env.state:
        env.state["password_accounts"] = _password_accounts(env, 8, "p")
    return [
        [
            Step(
                "POST",
                "/api/v1/sessions",
                JSON,
                json.dumps(
                    {"username": a["username"], "password": PASSWORD, "device_name": "bench"}
                ),
                (201,),
            )
        ]
        for a in env.state["password_accounts"]
    ]


def link_ops(env: Env, n: int) -> list[Op]:
    """Each operation: a link step (an Amazon account whose e-mail is a local account's)
    finished with that account's password. The step is made beforehand."""
    accounts = _password_accounts(env, n, "l")
    tag = env.tag()
    people = [customer(tag, "l", i) | {"email": a["email"]} for i, a in enumerate(accounts)]
    env.control.add_customers(people)
    tokens = env.control.mint([p["user_id"] for p in people])
    calls: list[tuple[str, str, Any, dict[str, str]]] = [
        ("POST", "/api/v1/sessions/amazon", {"access_token": t}, {}) for t in tokens
    ]
    answers = _expect(_calls(env.base_url, calls), 200)
    return [
        [
            Step(
                "POST",
                "/api/v1/flows/link",
                JSON,
                json.dumps({"flow_id": a["flow"]["id"], "password": PASSWORD}),
                (201,),
            )
        ]
        for a in answers
    ]


def device_ops(env: Env, n: int) -> list[Op]:
    return [
        [
            Step(
                "POST",
                "/api/v1/device/authorize",
                JSON,
                json.dumps({"device_name": "bench"}),
                (201,),
                ("device_code",),
            ),
            Step("POST", "/api/v1/device/token", JSON, '{"device_code": "{device_code}"}', (400,)),
        ]
    ]


def sign_out_ops(env: Env, n: int) -> list[Op]:
    ids = _returning_pool(env)
    sessions = sign_in_amazon(env, env.control.mint([ids[i % len(ids)] for i in range(n)]))
    return [
        [Step("DELETE", "/api/v1/sessions/current", env.system.session_headers(s), None, (204,))]
        for s in sessions
    ]


def invalid_token_ops(env: Env, n: int) -> list[Op]:
    return [amazon_op(f"Atza|bench-not-a-token-{i:04d}", (401,)) for i in range(64)]


def failing_ops(env: Env, n: int) -> list[Op]:
    ids = _returning_pool(env)
    return [amazon_op(t, (503,)) for t in env.control.mint(ids)]


LATENCY_FAULTS = [
    {"path": "/auth/o2/tokeninfo", "latency_ms": 50},
    {"path": "/user/profile", "latency_ms": 50},
]
FAILING_FAULTS = [
    {"path": "/auth/o2/tokeninfo", "status": 503},
    {"path": "/user/profile", "status": 503},
]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    ops: Callable[[Env, int], list[Op]]
    cycle: bool = False  # operations may repeat (no single-use token or code in them)
    guess_rate: float = 300.0  # ops/s to prepare for a closed-loop window (more is wasted)
    faults: tuple[dict[str, Any], ...] = ()
    requests_per_op: int = 1


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "returning_amazon",
            "returning Amazon sign-in (fresh token)",
            returning_ops,
            guess_rate=250,
        ),
        Scenario("first_amazon", "first-time Amazon sign-in", first_ops, guess_rate=200),
        Scenario("session_check", "session check (GET /api/v1/me)", session_check_ops, cycle=True),
        Scenario("password_sign_in", "password sign-in (argon2)", password_ops, cycle=True),
        Scenario("link_by_password", "link by password (argon2)", link_ops, guess_rate=40),
        Scenario(
            "device_authorize_poll",
            "device authorize + poll",
            device_ops,
            cycle=True,
            requests_per_op=2,
        ),
        Scenario("sign_out", "sign-out", sign_out_ops, guess_rate=300),
        Scenario("invalid_token", "invalid Amazon token", invalid_token_ops, cycle=True),
        Scenario(
            "amazon_latency_50ms",
            "returning sign-in, Amazon +50 ms",
            returning_ops,
            guess_rate=250,
            faults=tuple(LATENCY_FAULTS),
        ),
        Scenario(
            "amazon_failing",
            "Amazon failing (503)",
            failing_ops,
            cycle=True,
            faults=tuple(FAILING_FAULTS),
        ),
    )
}
