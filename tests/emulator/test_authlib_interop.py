"""An off-the-shelf OAuth client (Authlib's httpx client) against the emulator: authorization
code + PKCE S256, then refresh, then the profile with the bearer token."""

from __future__ import annotations

import secrets

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from starlette.applications import Starlette

from tests.emulator.conftest import BASE, REDIRECT_URI, WEB_ID, WEB_SECRET, browser_authorize


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_runs_code_pkce_and_refresh(app: Starlette, auth_method: str) -> None:
    async with AsyncOAuth2Client(
        client_id=WEB_ID,
        client_secret=WEB_SECRET,
        redirect_uri=REDIRECT_URI,
        scope="profile postal_code",
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
        transport=httpx.ASGITransport(app=app),
    ) as oauth:
        verifier = secrets.token_urlsafe(48)
        url, state = oauth.create_authorization_url(BASE + "/ap/oa", code_verifier=verifier)

        # The person's browser: plain HTTP form posts against the same emulator.
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as browser:
            query = await browser_authorize(browser, url)
        assert query["state"] == [state]
        callback = f"{REDIRECT_URI}?code={query['code'][0]}&state={state}"

        token = await oauth.fetch_token(
            BASE + "/auth/o2/token",
            authorization_response=callback,
            code_verifier=verifier,
        )
        assert token["token_type"] == "bearer"
        assert token["access_token"].startswith("Atza|")
        profile = await oauth.get(BASE + "/user/profile")
        assert profile.status_code == 200
        assert profile.json()["email"] == "ada@example.com"

        first_access = token["access_token"]
        refreshed = await oauth.refresh_token(BASE + "/auth/o2/token")
        assert refreshed["access_token"] != first_access
        assert refreshed["refresh_token"] == token["refresh_token"]
        info = await oauth.get(
            BASE + "/auth/o2/tokeninfo", params={"access_token": refreshed["access_token"]}
        )
        assert info.json()["aud"] == WEB_ID


async def test_authlib_sees_a_wrong_verifier_as_invalid_grant(app: Starlette) -> None:
    async with AsyncOAuth2Client(
        client_id=WEB_ID,
        client_secret=WEB_SECRET,
        redirect_uri=REDIRECT_URI,
        scope="profile",
        code_challenge_method="S256",
        transport=httpx.ASGITransport(app=app),
    ) as oauth:
        url, state = oauth.create_authorization_url(
            BASE + "/ap/oa", code_verifier=secrets.token_urlsafe(48)
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as browser:
            query = await browser_authorize(browser, url)
        with pytest.raises(OAuthError) as raised:
            await oauth.fetch_token(
                BASE + "/auth/o2/token",
                code=query["code"][0],
                state=state,
                code_verifier=secrets.token_urlsafe(48),
            )
        assert raised.value.error == "invalid_grant"
