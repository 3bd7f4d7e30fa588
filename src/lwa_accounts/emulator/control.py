"""The test-control API under /_emulator/ (JSON): customers, clients, tokens, codes, faults,
clock, reset. Bad input gets 422, unknown ids 404, duplicates 409; nothing changes then."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lwa_accounts.emulator.config import DEFAULT_CLIENT_SCOPES, CustomerSeed
from lwa_accounts.emulator.state import parse_scopes, state_of
from lwa_accounts.emulator.wire import ControlError, WireError, error_response, read_params
from lwa_accounts.settings import EMULATED_WEB_CLIENT_ID

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
UserId = Annotated[
    str, StringConstraints(pattern=r"^amzn1\.account\.[A-Za-z0-9]{1,64}$", max_length=100)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(_Strict):
    name: Text
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)]
    postal_code: Text | None = None
    # Emulated customers have demo passwords, shown on the sign-in page.
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "password"  # noqa: S105
    user_id: UserId | None = None


class CustomerPatch(_Strict):
    name: Text | None = None
    email: (
        Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)] | None
    ) = None
    postal_code: Text | None = None
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class ClientIn(_Strict):
    client_id: Text
    client_secret: Text | None = None
    redirect_uris: list[Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2000)]]
    allowed_scopes: list[Text] | None = None
    name: Text | None = None


class TokensIn(_Strict):
    user_id: Text
    client_id: Text = EMULATED_WEB_CLIENT_ID
    scope: Text = "profile postal_code"


class ApproveIn(_Strict):
    user_id: Text


class RevokeIn(_Strict):
    client_id: Text | None = None


class FaultIn(_Strict):
    path: Annotated[str, StringConstraints(pattern=r"^/", max_length=300)]
    status: Annotated[int, Field(ge=200, le=599)] | None = None
    latency_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    times: Annotated[int, Field(ge=1)] | None = None
    ratio: Annotated[float, Field(gt=0, le=1)] = 1.0
    body: str | dict[str, Any] | list[Any] | None = None
    drop: bool = False


class ClockIn(_Strict):
    advance_seconds: Annotated[float, Field(ge=0, le=10 * 365 * 24 * 3600)]


M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]


def _answers_errors(endpoint: Endpoint) -> Endpoint:
    """Answer a WireError (bad input, unknown id, duplicate) with its error body; the state
    methods raise before they change anything."""

    @functools.wraps(endpoint)
    async def answered(request: Request) -> Response:
        try:
            return await endpoint(request)
        except WireError as exc:
            return error_response(exc)

    return answered


async def _body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    try:
        if "json" in content_type or not content_type:
            data: Any = json.loads(raw) if raw.strip() else {}
        else:
            data = await read_params(request)
        return model.model_validate(data)
    except ValueError as exc:
        errors = (
            [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else []
        )
        raise ControlError(
            "invalid_request", "The request body is invalid", 422, extra={"errors": errors}
        ) from None


async def list_customers(request: Request) -> Response:
    return JSONResponse([c.public() for c in state_of(request).list_customers()])


@_answers_errors
async def add_customer(request: Request) -> Response:
    body = await _body(request, CustomerIn)
    customer = state_of(request).add_customer(CustomerSeed(**body.model_dump()))
    return JSONResponse(customer.public(), status_code=201)


@_answers_errors
async def customer(request: Request) -> Response:
    state, user_id = state_of(request), request.path_params["user_id"]
    if request.method == "GET":
        return JSONResponse(state.get_customer(user_id).public())
    if request.method == "DELETE":
        state.delete_customer(user_id)
        return Response(status_code=204)
    state.get_customer(user_id)  # 404 before 422 for an unknown customer
    changes = (await _body(request, CustomerPatch)).model_dump(exclude_unset=True)
    if any(changes.get(name, "") is None for name in ("name", "email", "password")):
        raise ControlError("invalid_request", "name, email and password cannot be null", 422)
    return JSONResponse(state.update_customer(user_id, changes).public())


@_answers_errors
async def revoke(request: Request) -> Response:
    body = await _body(request, RevokeIn)
    count = state_of(request).revoke(request.path_params["user_id"], body.client_id)
    return JSONResponse({"revoked_tokens": count})


@_answers_errors
async def clients(request: Request) -> Response:
    state = state_of(request)
    if request.method == "GET":
        return JSONResponse([c.public() for c in state.list_clients()])
    body = await _body(request, ClientIn)
    client = state.add_client(
        body.client_id,
        body.client_secret,
        body.redirect_uris,
        body.allowed_scopes or DEFAULT_CLIENT_SCOPES,
        body.name,
    )
    return JSONResponse(client.public(), status_code=201)


@_answers_errors
async def mint_tokens(request: Request) -> Response:
    body = await _body(request, TokensIn)
    tokens = state_of(request).mint_tokens(body.user_id, body.client_id, parse_scopes(body.scope))
    return JSONResponse(tokens, status_code=201)


@_answers_errors
async def decide_code(request: Request) -> Response:
    decision = request.path_params["decision"]
    if decision not in ("approve", "deny"):
        raise ControlError("not_found", "Use /approve or /deny", 404)
    user_id = (await _body(request, ApproveIn)).user_id if decision == "approve" else None
    pair = state_of(request).decide_code(request.path_params["user_code"], user_id)
    return JSONResponse({"user_code": pair.user_code, "status": pair.status})


@_answers_errors
async def faults(request: Request) -> Response:
    state = state_of(request)
    if request.method == "GET":
        return JSONResponse([f.public() for f in state.faults.list()])
    if request.method == "DELETE":
        return JSONResponse({"cleared": state.faults.clear()})
    spec = await _body(request, FaultIn)
    if spec.path.lower().startswith("/_emulator"):
        raise ControlError("invalid_request", "The control API cannot be faulted", 422)
    if spec.status is None and spec.body is None and not spec.drop and not spec.latency_ms:
        raise ControlError("invalid_request", "A fault needs status, body, latency_ms or drop", 422)
    body = spec.body if spec.body is None or isinstance(spec.body, str) else json.dumps(spec.body)
    fault = state.faults.add(
        spec.path, spec.status, spec.latency_ms, spec.times, spec.ratio, body, spec.drop
    )
    return JSONResponse(fault.public(), status_code=201)


@_answers_errors
async def clock(request: Request) -> Response:
    state = state_of(request)
    if request.method == "POST":
        state.advance_clock((await _body(request, ClockIn)).advance_seconds)
    return JSONResponse({"now": int(state.clock.now()), "offset_seconds": state.clock.offset})


async def reset(request: Request) -> Response:
    state = state_of(request)
    state.reset()
    return JSONResponse(state.snapshot())


routes = [
    Route("/_emulator/customers", list_customers, methods=["GET"]),
    Route("/_emulator/customers", add_customer, methods=["POST"]),
    Route("/_emulator/customers/{user_id}", customer, methods=["GET", "PATCH", "DELETE"]),
    Route("/_emulator/customers/{user_id}/revoke", revoke, methods=["POST"]),
    Route("/_emulator/clients", clients, methods=["GET", "POST"]),
    Route("/_emulator/tokens", mint_tokens, methods=["POST"]),
    Route("/_emulator/codes/{user_code}/{decision:str}", decide_code, methods=["POST"]),
    Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/_emulator/clock", clock, methods=["GET", "POST"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
]
