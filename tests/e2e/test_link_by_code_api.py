"""The JSON API's link step by e-mailed code (security.md item 6b): the flow offers it only
for a verified address, ``POST /api/v1/flows/email-code`` sends it to that address, and
``POST /api/v1/flows/link {"flow_id", "code"}`` links exactly like the password. The whole
app over ASGI with its emulated Amazon; the code read from the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lwa_accounts.testing.mail import code_in, queued_mail
from tests.e2e.amazon_harness import (
    ADA,
    CONTROL,
    PASSWORD,
    amazon_sign_in,
    bearer,
    database_of,
    e2e_settings,
    mint,
    register_password_account,
    running,
)

Service = tuple[FastAPI, httpx.AsyncClient]
EMAIL = "ada@example.com"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running(e2e_settings(tmp_path)) as pair:
        yield pair


async def local_account(app: FastAPI, client: httpx.AsyncClient) -> str:
    account = await register_password_account(client)
    account_id: str = account["id"]
    await set_verified(app, account_id, True)
    return account_id


async def set_verified(app: FastAPI, account_id: str, verified: bool) -> None:
    """What e-mail verification does, set directly through the store."""
    async with database_of(app).transaction() as stores:
        await stores.accounts.update(account_id, email_verified=verified)


async def codes_sent(app: FastAPI, to: str | None = None) -> list[str]:
    """The addresses the link step's codes went to."""
    return [m.to for m in await queued_mail(database_of(app), to) if m.kind == "prove_account"]


async def link_required(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await amazon_sign_in(client, await mint(client, ADA))
    assert (answer.status_code, answer.json()["result"]) == (200, "link_required"), answer.text
    flow: dict[str, Any] = answer.json()["flow"]
    return flow


async def send(client: httpx.AsyncClient, flow_id: str) -> httpx.Response:
    return await client.post("/api/v1/flows/email-code", json={"flow_id": flow_id})


async def link(client: httpx.AsyncClient, flow_id: str, **proof: str) -> httpx.Response:
    return await client.post("/api/v1/flows/link", json={"flow_id": flow_id, **proof})


async def last_code(app: FastAPI, to: str = EMAIL) -> str:
    sent = [m for m in await queued_mail(database_of(app), to) if m.kind == "prove_account"]
    return code_in(sent[-1])


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_a_verified_account_links_by_the_emailed_code(service: Service) -> None:
    app, client = service
    account_id = await local_account(app, client)
    flow = await link_required(client)
    assert flow["alternatives"] == ["register", "email_code"]
    assert flow["email_code_to"] == "a•••@example.com"
    sent = await send(client, flow["id"])
    assert sent.status_code == 202, sent.text
    assert sent.json()["result"] == "code_sent"
    assert sent.json()["sent_to"] == "a•••@example.com"
    assert sent.json()["expires_at"] <= flow["expires_at"]
    code = await last_code(app)
    wrong = await link(client, flow["id"], code="000000" if code != "000000" else "111111")
    assert problem(wrong, 400, "wrong_email_code")["attempts_left"] == 4
    done = await link(client, flow["id"], code=f"{code[:3]} {code[3:]}")
    assert done.status_code == 201, done.text
    body = done.json()
    assert (body["result"], body["created"]) == ("signed_in", False)
    assert body["account"]["id"] == account_id
    assert body["account"]["amazon_user_id"] == ADA
    me = await client.get("/api/v1/me", headers=bearer(body["session"]["token"]))
    assert me.status_code == 200
    problem(await link(client, flow["id"], code=code), 410, "flow_expired")
    problem(await link(client, flow["id"], password=PASSWORD), 410, "flow_expired")
    problem(await send(client, flow["id"]), 410, "flow_expired")
    # From now on Amazon alone signs in.
    again = await amazon_sign_in(client, await mint(client, ADA))
    assert (again.status_code, again.json()["account"]["id"]) == (201, account_id)


async def test_an_unverified_account_gets_no_code_option(service: Service) -> None:
    app, client = service
    account_id = await local_account(app, client)
    flow = await link_required(client)
    # No longer verified (an unverified holder of Amazon's address gets no link step).
    await set_verified(app, account_id, False)
    polled = await client.post("/api/v1/flows/poll", json={"flow_id": flow["id"]})
    assert polled.json()["flow"]["alternatives"] == ["register"]
    assert polled.json()["flow"]["email_code_to"] is None
    refused = problem(await send(client, flow["id"]), 409, "code_proof_unavailable")
    assert "no verified e-mail address" in refused["detail"]
    problem(await link(client, flow["id"], code="123456"), 409, "code_proof_unavailable")
    assert await codes_sent(app) == []
    assert (await link(client, flow["id"], password=PASSWORD)).status_code == 201


async def test_the_code_goes_to_the_local_address_never_amazons(service: Service) -> None:
    app, client = service
    await local_account(app, client)
    # Ada's Amazon account now spells her address differently: it still matches (a hint).
    changed = await client.patch(f"{CONTROL}/customers/{ADA}", json={"email": "ADA@Example.com"})
    assert changed.status_code == 200, changed.text
    flow = await link_required(client)
    assert (await send(client, flow["id"])).status_code == 202
    assert await codes_sent(app) == [EMAIL]


async def test_a_code_for_one_flow_never_completes_another(service: Service) -> None:
    app, client = service
    await local_account(app, client)
    flow_a = await link_required(client)
    flow_b = await link_required(client)  # a second TV, the same Amazon user and account
    assert (await send(client, flow_a["id"])).status_code == 202
    code_a = await last_code(app)
    problem(await link(client, flow_b["id"], code=code_a), 410, "email_link_expired")
    assert (await link(client, flow_a["id"], code=code_a)).status_code == 201


async def test_bad_link_bodies_name_the_field(service: Service) -> None:
    app, client = service
    await local_account(app, client)
    flow = await link_required(client)
    both = problem(
        await link(client, flow["id"], password=PASSWORD, code="123456"), 422, "validation_failed"
    )
    assert set(both["errors"]) == {"code"}
    neither = problem(await link(client, flow["id"]), 422, "validation_failed")
    assert set(neither["errors"]) == {"password"}
    long = problem(await link(client, flow["id"], code="1" * 33), 422, "validation_failed")
    assert set(long["errors"]) == {"code"}
    odd = await client.post("/api/v1/flows/link", json={"flow_id": flow["id"], "code": 123456})
    assert set(problem(odd, 422, "validation_failed")["errors"]) == {"code"}
    problem(await send(client, "flw_" + "x" * 43), 404, "flow_not_found")
    unknown = await client.post("/api/v1/flows/email-code", json={"flow_id": flow["id"], "to": "x"})
    assert set(problem(unknown, 422, "validation_failed")["errors"]) == {"to"}
    assert (await client.get("/api/v1/flows/email-code")).status_code == 405
    assert await codes_sent(app) == []
    # None of it used the flow up.
    assert (await send(client, flow["id"])).status_code == 202
    assert (await link(client, flow["id"], code=await last_code(app))).status_code == 201


async def test_the_mail_budget_answers_429(service: Service) -> None:
    app, client = service
    await local_account(app, client)
    flow = await link_required(client)
    answers = [await send(client, flow["id"]) for _ in range(6)]  # 5/hour per account
    accepted = [a for a in answers if a.status_code == 202]
    assert 0 < len(accepted) <= 5
    throttled = answers[len(accepted)]
    problem(throttled, 429, "too_many_attempts")
    assert int(throttled.headers["retry-after"]) > 0
    assert len(await codes_sent(app, EMAIL)) == len(accepted)


async def test_the_openapi_document_describes_the_code_step(service: Service) -> None:
    _, client = service
    spec = (await client.get("/api/openapi.json")).json()
    send_op = spec["paths"]["/api/v1/flows/email-code"]["post"]
    assert {"202", "404", "409", "410", "422", "429"} <= set(send_op["responses"])
    link_op = spec["paths"]["/api/v1/flows/link"]["post"]
    assert "code" in link_op["description"]
    schema = spec["components"]["schemas"]["LinkRequest"]["properties"]
    assert {"flow_id", "password", "code"} <= set(schema)
    flow_schema = spec["components"]["schemas"]["FlowOut"]["properties"]
    assert "email_code_to" in flow_schema
