"""Item 21: every Amazon sign-in, link, unlink and refused attempt is in the audit log with
account, client id, IP and time, and never a token, a flow id or a password.

Written by ``flows.amazon.audit_event`` / ``_refuse`` (and ``audit_refused_token`` for tokens
Amazon's checks refuse) into ``audit_events``; read with ``lwa-accounts audit``. This walks
one attack-shaped journey over HTTP and reads the rows it left.
"""

from __future__ import annotations

from lwa_accounts.settings import EMULATED_DEVICE_CLIENT_ID
from tests.e2e.amazon_harness import ADA, CONTROL, PASSWORD
from tests.security.api_calls import link_flow
from tests.security.service import (
    START,
    Service,
    amazon_sign_in,
    bearer,
    mint,
    register,
)

EVIL_CLIENT = "amzn1.application-oa2-client.someoneelse000000000000000"
ASGI_CLIENT_IP = "127.0.0.1"  # what httpx.ASGITransport reports as the peer


async def test_sec21_amazon_events_and_refusals_are_audited_without_secrets(
    service: Service,
) -> None:
    client = await service.client()
    secrets_used = [PASSWORD, "wrong-password-1"]

    added = await client.post(
        f"{CONTROL}/clients",
        json={"client_id": EVIL_CLIENT, "client_secret": "s", "redirect_uris": ["https://e/cb"]},
    )
    assert added.status_code == 201, added.text
    foreign = await mint(client, ADA, client_id=EVIL_CLIENT)
    secrets_used.append(foreign)
    refused = await client.post("/api/v1/sessions/amazon", json={"access_token": foreign})
    assert refused.status_code == 401
    bad_flow = "flw_" + "x" * 43
    secrets_used.append(bad_flow)
    assert (await link_flow(client, bad_flow, PASSWORD)).status_code == 404

    account = await register(client, "ada", "ada@example.com")
    await service.confirm_email("ada@example.com")  # only a confirmed address is a target
    started = await amazon_sign_in(client, ADA)
    flow_id = started.json()["flow"]["id"]
    secrets_used.append(flow_id)
    assert (await link_flow(client, flow_id, "wrong-password-1")).status_code == 401
    linked = await link_flow(client, flow_id, PASSWORD)
    assert linked.status_code == 201, linked.text
    session_token = linked.json()["session"]["token"]
    secrets_used.append(session_token)
    again = await amazon_sign_in(client, ADA)
    secrets_used.append(again.json()["session"]["token"])
    detached = await client.delete("/api/v1/me/amazon", headers=bearer(session_token))
    assert detached.status_code == 204, detached.text

    async with service.database.transaction() as stores:
        rows = [e for e in await stores.audit.list(limit=500) if e.kind.startswith("amazon.")]
    events = [(row.kind, row.detail) for row in rows]
    assert ("amazon.refused", "reason=token_for_another_app") in events
    assert ("amazon.refused", "reason=flow_not_found") in events
    assert ("amazon.refused", "reason=invalid_credentials") in events
    for kind in ("amazon.flow_started", "amazon.linked", "amazon.signed_in", "amazon.unlinked"):
        assert kind in {k for k, _ in events}, events
    for row in rows:
        assert row.ip == ASGI_CLIENT_IP, row
        assert row.at == START, row  # the service's (fixed) clock
        if row.kind != "amazon.refused" or row.detail == "reason=invalid_credentials":
            # Everything about a known account names it and the Amazon app it came through.
            assert row.account_id == account["id"], row
            assert row.amazon_user_id == ADA, row
            assert row.client_id == EMULATED_DEVICE_CLIENT_ID, row
    dump = "\n".join(repr(row) for row in rows)
    for secret in secrets_used:
        assert secret not in dump
