"""security.md item 3 (and issue 9, hole 8): a TV whose Amazon grant was revoked is signed
out at Amazon, not "misconfigured".

The customer removes the app at Amazon (emulator control ``/customers/{id}/revoke``). The
TV's next refresh of its Amazon token (client id, no secret, as CBL devices do) is answered
400 ``invalid_grant`` exactly as Amazon answers it, and our client reports
``AmazonSignedOut`` (sign in again) instead of ``AmazonProtocolError`` (a configuration
error). The revoked access token no longer signs anyone in here: 401, no new session.
The service itself keeps no Amazon refresh token for a device (server-assisted sign-ins use
the tokens once and drop them), so there is nothing of ours to refresh on its behalf.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from lwa_accounts.core.device_poll import Done
from lwa_accounts.errors import AmazonProtocolError, AmazonSignedOut
from lwa_accounts.lwa.client import LwaClient
from lwa_accounts.lwa.device import poll_until_done
from lwa_accounts.settings import EMULATED_WEB_CLIENT_ID, Settings
from tests.e2e.amazon_harness import (
    ADA,
    BASE_URL,
    CONTROL,
    amazon_sign_in,
    count,
    e2e_settings,
    running,
)


async def _no_sleep(_seconds: float) -> None:
    return None


def _tv_lwa_client(app: FastAPI) -> LwaClient:
    """The TV's own Login with Amazon client, talking to the embedded emulated Amazon, with
    a device security profile that has a secret (one profile for web and TV)."""
    settings = Settings(
        lwa_api_url=f"{BASE_URL}/_amazon",
        lwa_authorize_url=f"{BASE_URL}/_amazon/ap/oa",
        lwa_device_client_id=EMULATED_WEB_CLIENT_ID,
    )
    return LwaClient(settings, transport=httpx.ASGITransport(app=app), sleep=_no_sleep)


async def test_sec03_revoked_tv_grant_is_signed_out_not_misconfigured(tmp_path: Path) -> None:
    async with running(e2e_settings(tmp_path)) as (app, client), _tv_lwa_client(app) as tv:
        pair = await tv.create_code_pair()
        approved = await client.post(
            f"{CONTROL}/codes/{pair.user_code}/approve", json={"user_id": ADA}
        )
        assert approved.status_code == 200, approved.text
        result = await poll_until_done(tv, pair, sleep=_no_sleep)
        assert isinstance(result, Done)
        refresh_token = result.tokens.refresh_token
        assert refresh_token is not None
        signed_in = await amazon_sign_in(client, result.tokens.access_token)
        assert signed_in.status_code == 201, signed_in.text
        sessions = await count(app, "sessions")

        revoked = await client.post(f"{CONTROL}/customers/{ADA}/revoke", json={})
        assert revoked.status_code == 200, revoked.text

        # Amazon's answer on the wire: 400 invalid_grant (lwa-protocol.md 2.4).
        wire = await client.post(
            "/_amazon/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": EMULATED_WEB_CLIENT_ID,
            },
        )
        assert wire.status_code == 400, wire.text
        assert wire.json()["error"] == "invalid_grant"
        # Our client's reading of it: signed out at Amazon.
        try:
            await tv.refresh(refresh_token, device=True)
        except AmazonSignedOut:
            pass
        except AmazonProtocolError as error:
            pytest.fail(f"a revoked grant read as a configuration error: {error.extra}")
        else:
            pytest.fail("a revoked grant still refreshed")
        # And the revoked access token signs nobody in any more.
        again = await amazon_sign_in(client, result.tokens.access_token)
        assert again.status_code == 401, again.text
        assert await count(app, "sessions") == sessions
