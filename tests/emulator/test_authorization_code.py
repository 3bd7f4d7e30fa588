"""/ap/oa and the authorization_code grant (lwa-protocol.md section 2)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.emulator.state import EmulatorState
from tests.emulator.conftest import REDIRECT_URI, WEB_ID, WEB_SECRET, browser_authorize
from tests.emulator.html_forms import form_with
from tests.emulator.test_device_flow import assert_error


def authorize_url(**overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "client_id": WEB_ID,
        "scope": "profile postal_code",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "state": "xyz",
    }
    params.update(overrides)
    return "/ap/oa?" + urlencode({k: v for k, v in params.items() if v is not None})


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def exchange(client: httpx.AsyncClient, code: str, **extra: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": WEB_ID,
        "client_secret": WEB_SECRET,
        **extra,
    }
    return await client.post("/auth/o2/token", data={k: v for k, v in data.items() if v})


async def test_code_flow_redirects_back_with_code_state_and_scope(
    client: httpx.AsyncClient,
) -> None:
    query = await browser_authorize(client, authorize_url())
    assert query["state"] == ["xyz"]
    assert query["scope"] == ["profile postal_code"]
    response = await exchange(client, query["code"][0])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["token_type"] == "bearer"


async def test_code_is_single_use_even_when_the_exchange_fails(
    client: httpx.AsyncClient,
) -> None:
    code = (await browser_authorize(client, authorize_url()))["code"][0]
    wrong_uri = await exchange(client, code, redirect_uri=REDIRECT_URI + "?x=1")
    assert_error(wrong_uri, 400, "invalid_grant")
    assert "redirect_uri" in wrong_uri.json()["error_description"]
    assert_error(await exchange(client, code), 400, "invalid_grant")


async def test_client_authentication_by_basic_and_its_failures(
    client: httpx.AsyncClient,
) -> None:
    code = (await browser_authorize(client, authorize_url()))["code"][0]
    basic = await client.post(
        "/auth/o2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(WEB_ID, WEB_SECRET),
    )
    assert basic.status_code == 200, basic.text
    code = (await browser_authorize(client, authorize_url()))["code"][0]
    assert_error(await exchange(client, code, client_secret="wrong"), 401, "invalid_client")
    code = (await browser_authorize(client, authorize_url()))["code"][0]
    assert_error(await exchange(client, code, client_id="unknown"), 401, "invalid_client")
    assert_error(await exchange(client, "", client_id="x"), 400, "invalid_request")


async def test_pkce_s256(client: httpx.AsyncClient) -> None:
    verifier = secrets.token_urlsafe(48)
    url = authorize_url(code_challenge=s256(verifier), code_challenge_method="S256")
    code = (await browser_authorize(client, url))["code"][0]
    assert_error(await exchange(client, code, code_verifier="x" * 50), 400, "invalid_grant")
    code = (await browser_authorize(client, url))["code"][0]
    assert (await exchange(client, code, code_verifier=verifier)).status_code == 200


async def test_pkce_defaults_to_plain(client: httpx.AsyncClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = (await browser_authorize(client, authorize_url(code_challenge=verifier)))["code"][0]
    assert (await exchange(client, code, code_verifier=verifier)).status_code == 200
    code = (await browser_authorize(client, authorize_url(code_challenge=verifier)))["code"][0]
    # Under plain, the S256 transform of the verifier is not the challenge.
    assert_error(await exchange(client, code, code_verifier=s256(verifier)), 400, "invalid_grant")


async def test_pkce_without_secret_is_a_switch(
    client: httpx.AsyncClient, config: EmulatorConfig
) -> None:
    verifier = secrets.token_urlsafe(48)
    url = authorize_url(code_challenge=s256(verifier), code_challenge_method="S256")
    code = (await browser_authorize(client, url))["code"][0]
    refused = await exchange(client, code, client_secret="", code_verifier=verifier)
    assert_error(refused, 401, "invalid_client")
    config.pkce_without_secret = True
    code = (await browser_authorize(client, url))["code"][0]
    accepted = await exchange(client, code, client_secret="", code_verifier=verifier)
    assert accepted.status_code == 200, accepted.text


async def test_expired_code_is_invalid_grant(client: httpx.AsyncClient) -> None:
    code = (await browser_authorize(client, authorize_url()))["code"][0]
    await client.post("/_emulator/clock", json={"advance_seconds": 301})
    assert_error(await exchange(client, code), 400, "invalid_grant")


async def test_consent_denied_redirects_with_access_denied(client: httpx.AsyncClient) -> None:
    query = await browser_authorize(client, authorize_url(), allow=False)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["xyz"]
    assert "code" not in query


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": "profile wallet"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "S512", "code_challenge": "a" * 43}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"code_challenge": "a" * 42 + "!"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
    ],
)
async def test_bad_requests_redirect_back_with_an_error(
    client: httpx.AsyncClient, overrides: dict[str, str | None], error: str
) -> None:
    response = await client.get(authorize_url(**overrides))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == [error]
    assert query["state"] == ["xyz"]
    assert query["error_description"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "amzn1.application-oa2-client.unknown"},
        {"client_id": None},
        {"redirect_uri": "https://evil.test/cb"},
        {"redirect_uri": REDIRECT_URI + "?extra=1"},
        {"redirect_uri": None},
    ],
)
async def test_bad_client_or_redirect_uri_shows_an_error_page_never_a_redirect(
    client: httpx.AsyncClient, overrides: dict[str, str | None]
) -> None:
    response = await client.get(authorize_url(**overrides))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "There was a problem" in response.text


async def test_second_visit_skips_sign_in_and_granted_consent(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    first = await browser_authorize(client, authorize_url())
    assert (await exchange(client, first["code"][0])).status_code == 200
    again = await client.get(authorize_url(state="second"))
    assert again.status_code == 302
    query = parse_qs(urlsplit(again.headers["location"]).query)
    assert query["state"] == ["second"]
    assert (await exchange(client, query["code"][0])).status_code == 200


async def test_wrong_password_and_forged_consent_change_nothing(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    page = await client.get(authorize_url())
    form = form_with(page.text, "/ap/signin", "Sign in")
    wrong = await client.post(
        form.action, data={**form.fields, "email": "ada@example.com", "password": "x"}
    )
    assert wrong.status_code == 401
    forged = await client.post(
        "/ap/consent", data={"csrf_token": "x", "req": form.fields["req"], "decision": "allow"}
    )
    assert forged.status_code == 403
    assert state.codes == {}


async def test_refresh_grant_for_web_tokens(client: httpx.AsyncClient) -> None:
    code = (await browser_authorize(client, authorize_url()))["code"][0]
    refresh = (await exchange(client, code)).json()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": WEB_ID}
    assert_error(await client.post("/auth/o2/token", data=data), 401, "invalid_client")
    renewed = await client.post(
        "/auth/o2/token", json={**data, "client_secret": WEB_SECRET}
    )  # JSON body, as some clients send
    assert renewed.status_code == 200, renewed.text
    bogus = await client.post(
        "/auth/o2/token",
        data={**data, "client_secret": WEB_SECRET, "refresh_token": "Atzr|nope"},
    )
    assert_error(bogus, 400, "invalid_grant")


async def test_unsupported_grant_type(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/o2/token", data={"grant_type": "password"})
    assert_error(response, 400, "unsupported_grant_type")
    assert_error(await client.post("/auth/o2/token", data={}), 400, "invalid_request")


async def test_pages_escape_customer_data(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/_emulator/customers",
        json={"name": "<script>alert(1)</script>", "email": "x@example.com", "password": '"><b>'},
    )
    assert created.status_code == 201
    page = await client.get(authorize_url())
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert '"><b>' not in page.text
