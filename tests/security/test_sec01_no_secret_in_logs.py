"""security.md item 1: no token, handle, code, state, password or e-mail reaches a log line.

A real ``lwa-accounts serve`` process (emulated Amazon mounted, log level DEBUG, so the
request log, the Amazon call log, every other logger of ours, uvicorn's and httpx all
write) runs every journey over real HTTP; every secret it hands out or is given is
collected, then ALL of the process's stdout and stderr is searched for each of them: zero
hits. Once with JSON lines (production's format: every line must parse) and once with
console lines. Also the retired handle-in-the-path endpoints (410 ``moved``) and a client
that wrongly puts ``access_token=`` in a query.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import QueuedMail, code_in, link_in, queued_mail
from lwa_accounts.tv.client import DeviceClient, SignedIn
from tests.emulator.html_forms import forms
from tests.processes import CLI, free_port, running_server

pytestmark = pytest.mark.slow

CONTROL = "/_amazon/_emulator"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Secrets:
    """Every secret the journeys used, by kind (for a readable failure)."""

    found: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, *values: object) -> None:
        for value in values:
            # Amazon's user codes are the shortest secret (6 characters).
            if isinstance(value, str) and len(value) >= 6:
                self.found.setdefault(kind, set()).add(value)

    def leaks(self, text: str) -> dict[str, list[str]]:
        return {
            kind: sorted(v for v in values if v in text)
            for kind, values in self.found.items()
            if any(v in text for v in values)
        }


@contextmanager
def serve(tmp_path: Path, log_format: str) -> Iterator[tuple[str, Path]]:
    """``lwa-accounts serve`` at log level DEBUG; its stdout and stderr go to one file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(tmp_path / "var"),
            "LWA_ACCOUNTS_ENV": "development",  # no Amazon credentials: emulator mounted
            "LWA_ACCOUNTS_LOG_LEVEL": "DEBUG",
            "LWA_ACCOUNTS_LOG_FORMAT": log_format,
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            "LWA_ACCOUNTS_DEVICE_POLL_INTERVAL_SECONDS": "1",
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        ready_url=url + "/health",
        log=log,
    ):
        yield url, log


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Customer:
    user_id: str
    email: str
    password: str


class Journeys:
    """One server, one bag of secrets, a few HTTP clients (each with its own cookies)."""

    def __init__(self, http: httpx.AsyncClient, seen: Secrets) -> None:
        self.http = http
        self.seen = seen

    # ---- helpers ----

    def note_response(self, response: httpx.Response) -> None:
        """Whatever secret a response hands out: tokens, flow ids, codes, cookies."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            session = body.get("session") or {}
            flow = body.get("flow") or {}
            handoff = body.get("handoff") or {}
            self.seen.add("session token", session.get("token"))
            self.seen.add("flow id", flow.get("id"))
            self.seen.add("hand-off code", handoff.get("code"), _plain(handoff.get("code")))
            self.seen.add("device code", body.get("device_code"))
            self.seen.add("authorization id", body.get("id") if "user_code" in body else None)
            self.seen.add("user code", body.get("user_code"), _plain(body.get("user_code")))
            self.seen.add("e-mail", (body.get("account") or {}).get("email"))
        for name, value in response.cookies.items():
            self.seen.add(f"cookie {name}", value)

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, path, **kwargs)
        self.note_response(response)
        return response

    async def customer(self, name: str, email: str | None = None) -> Customer:
        """A new customer at the emulated Amazon."""
        email = email or unique(name.lower().replace(" ", ".")) + "@example.net"
        password = unique("amazon-pw")
        self.seen.add("e-mail", email)
        self.seen.add("password", password)
        created = await self.http.post(
            f"{CONTROL}/customers",
            json={"name": name, "email": email, "password": password, "postal_code": "98052"},
        )
        assert created.status_code == 201, created.text
        return Customer(str(created.json()["user_id"]), email, password)

    async def amazon_token(self, user_id: str, scope: str = "profile postal_code") -> str:
        minted = await self.http.post(
            f"{CONTROL}/tokens", json={"user_id": user_id, "scope": scope}
        )
        assert minted.status_code == 201, minted.text
        tokens = minted.json()
        self.seen.add("Amazon access token", tokens["access_token"])
        self.seen.add("Amazon refresh token", tokens.get("refresh_token"))
        return str(tokens["access_token"])

    async def register(self, username: str, email: str) -> str:
        password = unique("local-pw")
        self.seen.add("password", password)
        self.seen.add("e-mail", email)
        created = await self.call(
            "POST",
            "/api/v1/accounts",
            json={"username": username, "email": email, "name": "Sec Test", "password": password},
        )
        assert created.status_code == 201, created.text
        return password

    async def password_sign_in(self, username: str, password: str) -> str:
        signed_in = await self.call(
            "POST", "/api/v1/sessions", json={"username": username, "password": password}
        )
        assert signed_in.status_code == 201, signed_in.text
        return str(signed_in.json()["session"]["token"])

    async def amazon_sign_in(self, token: str) -> dict[str, Any]:
        response = await self.call("POST", "/api/v1/sessions/amazon", json={"access_token": token})
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    async def form(self, path: str, data: dict[str, str]) -> httpx.Response:
        """A page form post with the CSRF token of this client's browser session."""
        page = await self.http.get("/signin")
        match = CSRF_RE.search(page.text)
        assert match, page.text
        self.seen.add("CSRF token", match.group(1))
        response = await self.http.post(path, data={**data, "csrf_token": match.group(1)})
        self.note_response(response)
        return response


def _plain(code: object) -> str | None:
    return code.replace("-", "") if isinstance(code, str) else None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The new endpoints (security.md item 1: handles in bodies, never in URLs).


async def poll_flow(j: Journeys, flow_id: str) -> httpx.Response:
    return await j.call("POST", "/api/v1/flows/poll", json={"flow_id": flow_id})


async def link_flow(j: Journeys, flow_id: str, password: str) -> httpx.Response:
    return await j.call(
        "POST", "/api/v1/flows/link", json={"flow_id": flow_id, "password": password}
    )


async def register_flow(j: Journeys, flow_id: str, fields: dict[str, str]) -> httpx.Response:
    return await j.call("POST", "/api/v1/flows/register", json={"flow_id": flow_id, **fields})


async def handoff_flow(j: Journeys, flow_id: str) -> httpx.Response:
    return await j.call("POST", "/api/v1/flows/handoff", json={"flow_id": flow_id})


# ---- the journeys ----


async def accounts_and_password_sign_in(j: Journeys) -> tuple[str, str, str]:
    username = unique("sec-ada")
    email = f"{username}@example.org"
    password = await j.register(username, email)
    token = await j.password_sign_in(username, password)
    wrong = await j.call(
        "POST", "/api/v1/sessions", json={"username": username, "password": "wrong-" + password}
    )
    assert wrong.status_code == 401
    j.seen.add("password", "wrong-" + password)
    me = await j.call("GET", "/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    return username, email, password


async def email_verification(
    j: Journeys, data_dir: Path, username: str, email: str, password: str
) -> None:
    """Issue 13: the mailed link (its token in a URL's query, as a mail link must be) and
    the code, on the page and through the API; then a change of address."""
    link = (await mailed(data_dir, email))[-1]
    token = link_in(link, "/verify-email?token=").partition("?token=")[2]
    j.seen.add("e-mail link token", token)
    page = await j.call("GET", f"/verify-email?token={token}")
    assert page.status_code == 200, page.text
    csrf = CSRF_RE.search(page.text)
    assert csrf, page.text
    confirmed = await j.call(
        "POST", "/verify-email", data={"token": token, "csrf_token": csrf.group(1)}
    )
    assert confirmed.status_code == 303, confirmed.text
    bearer_token = await j.password_sign_in(username, password)
    new = unique("sec-new") + "@example.org"
    j.seen.add("e-mail", new)
    asked = await j.call(
        "PATCH",
        "/api/v1/me",
        json={"email": new, "password": password},
        headers=bearer(bearer_token),
    )
    assert asked.status_code == 200, asked.text
    change = (await mailed(data_dir, new))[-1]
    j.seen.add("e-mail link token", link_in(change, "?token=").partition("?token=")[2])
    moved = await j.call(
        "POST",
        "/api/v1/me/email-verification",
        json={"code": code_in(change)},
        headers=bearer(bearer_token),
    )
    assert moved.status_code == 200, moved.text
    back = await j.call(  # back to the first address, for the link step below
        "PATCH", "/api/v1/me", json={"email": email}, headers=bearer(bearer_token)
    )
    assert back.status_code == 200, back.text
    code = code_in((await mailed(data_dir, email))[-1])
    again = await j.call(
        "POST", "/api/v1/me/email-verification", json={"code": code}, headers=bearer(bearer_token)
    )
    assert again.status_code == 200, again.text


async def mailed(data_dir: Path, to: str) -> list[QueuedMail]:
    """The server's outbox, read from its own database (the same data directory and key)."""
    # The server was started without this process's LWA_ACCOUNTS_* variables: its database
    # is the SQLite file in its data directory, whatever this test run's default is.
    database = Database.from_settings(
        Settings(env="development", data_dir=data_dir, database_url=None)
    )
    try:
        return [m for m in await queued_mail(database, to) if m.kind == "verify_email"]
    finally:
        await database.dispose()


async def amazon_api_sign_ins(j: Journeys, local_email: str, local_password: str) -> None:
    # New user, then the same user returning.
    nia = await j.customer("Nia New")
    first = await j.amazon_sign_in(await j.amazon_token(nia.user_id))
    assert (first["result"], first["created"]) == ("signed_in", True)
    again = await j.amazon_sign_in(await j.amazon_token(nia.user_id))
    assert (again["result"], again["created"]) == ("signed_in", False)

    # An Amazon account with the local account's e-mail: link_required, then the password.
    lin = await j.customer("Lin Link", email=local_email)
    link = await j.amazon_sign_in(await j.amazon_token(lin.user_id))
    assert link["result"] == "link_required"
    flow_id = link["flow"]["id"]
    assert (await poll_flow(j, flow_id)).json()["result"] == "pending"
    assert (await link_flow(j, flow_id, "wrong-" + local_password)).status_code == 401
    assert (await link_flow(j, flow_id, local_password)).status_code == 201

    # Amazon shares only the user id: registration_required, then the form.
    shy = await j.customer("Reg Shy")
    registration = await j.amazon_sign_in(
        await j.amazon_token(shy.user_id, scope="profile:user_id")
    )
    assert registration["result"] == "registration_required"
    email = unique("reg.shy") + "@example.net"
    j.seen.add("e-mail", email)
    done = await register_flow(j, registration["flow"]["id"], {"name": "Reg Shy", "email": email})
    assert done.status_code == 201, done.text


async def browser_amazon_redirect(j: Journeys) -> None:
    """/auth/amazon/start -> the emulated /ap/oa sign-in and consent -> our callback."""
    walker = await j.customer("Web Walker")
    response = await j.call("GET", "/auth/amazon/start")
    callback: str | None = None
    for _ in range(8):
        if response.status_code in (302, 303, 307):
            location = urljoin(str(response.url), response.headers["location"])
            if urlsplit(location).path == "/auth/amazon/callback":
                callback = location
                break
            response = await j.call("GET", location)
            continue
        assert response.status_code == 200, response.text
        page_forms = forms(response.text)
        signin = next((f for f in page_forms if f.action.endswith("/ap/signin")), None)
        consent = next((f for f in page_forms if f.action.endswith("/ap/consent")), None)
        if signin is not None and "email" in signin.fields:
            data = signin.fields | {"email": walker.email, "password": walker.password}
            response = await j.call("POST", urljoin(str(response.url), signin.action), data=data)
        elif consent is not None:
            data = consent.fields | {"decision": "allow"}
            response = await j.call("POST", urljoin(str(response.url), consent.action), data=data)
        else:
            raise AssertionError(response.text)
    assert callback is not None, "never redirected back to /auth/amazon/callback"
    query = parse_qs(urlsplit(callback).query)
    j.seen.add("OAuth code", *query["code"])
    j.seen.add("OAuth state", *query["state"])
    assert len(query["state"][0]) >= 32
    finished = await j.call("GET", callback)
    assert finished.status_code == 303, finished.text
    assert (await j.call("GET", "/account")).status_code == 200  # signed in, new account


async def our_device_grant(tv: Journeys, phone: Journeys, username: str, password: str) -> None:
    started = await tv.call("POST", "/api/v1/device/authorize", json={"device_name": "Den TV"})
    assert started.status_code == 201, started.text
    data = started.json()
    signed_in = await phone.form(
        "/signin", {"username": username, "password": password, "next": "/account"}
    )
    assert signed_in.status_code == 303, signed_in.text
    # The QR code opens verification_uri_complete: the code travels in its query.
    opened = await phone.call("GET", data["verification_uri_complete"])
    assert opened.status_code == 200
    assert (await phone.form("/activate", {"code": data["user_code"]})).status_code == 200
    approved = await phone.form(
        "/activate/decide", {"code": data["user_code"], "decision": "approve"}
    )
    assert approved.status_code == 200, approved.text
    token = await tv.call("POST", "/api/v1/device/token", json={"device_code": data["device_code"]})
    assert token.status_code == 200, token.text


async def amazon_device_authorization(j: Journeys, base: str) -> None:
    """The reference TV client: the server runs Amazon's code pair, the TV polls."""
    user_id = (await j.customer("Tess Tv")).user_id
    async with DeviceClient(base, device_name="Hall TV") as tv:
        code = await tv.start_amazon()
        j.seen.add("authorization id", code.id)
        j.seen.add("Amazon user code", code.user_code)
        approved = await j.http.post(
            f"{CONTROL}/codes/{code.user_code}/approve", json={"user_id": user_id}
        )
        assert approved.status_code == 200, approved.text
        result = await tv.poll_amazon(code, interval=1)
        assert isinstance(result, SignedIn), result
        j.seen.add("session token", result.token)
        # The TV's session works, then ends.
        assert (await tv.me(result.token)).amazon_user_id == user_id
        await tv.sign_out(result.token)


async def handoff_to_phone(tv: Journeys, phone: Journeys) -> None:
    shy = await tv.customer("Phone Finisher")
    token = await tv.amazon_token(shy.user_id, scope="profile:user_id")
    outcome = await tv.amazon_sign_in(token)
    assert outcome["result"] == "registration_required"
    flow_id = outcome["flow"]["id"]
    offer = await handoff_flow(tv, flow_id)
    assert offer.status_code == 201, offer.text
    code = offer.json()["code"]
    tv.seen.add("hand-off code", code, _plain(code))
    opened = await phone.call("GET", offer.json()["url"])  # /activate?code=... (the QR code)
    assert opened.status_code == 200
    assert "/activate" in offer.json()["url"]
    email = unique("phone.finisher") + "@example.net"
    phone.seen.add("e-mail", email)
    shown = await phone.form("/activate", {"code": code})
    assert shown.status_code == 200, shown.text
    done = await phone.form(
        "/activate/register",
        {"code": code, "username": unique("finisher"), "name": "Phone Finisher", "email": email},
    )
    assert done.status_code == 200, done.text
    collected = await poll_flow(tv, flow_id)
    assert collected.status_code == 201, collected.text


async def attach_detach_and_sign_out(j: Journeys) -> None:
    username = unique("sec-bob")
    password = await j.register(username, f"{username}@example.org")
    token = await j.password_sign_in(username, password)
    user_id = (await j.customer("Bob Attach")).user_id
    attached = await j.call(
        "POST",
        "/api/v1/me/amazon",
        json={"access_token": await j.amazon_token(user_id)},
        headers=bearer(token),
    )
    assert attached.status_code == 200, attached.text
    detached = await j.call("DELETE", "/api/v1/me/amazon", headers=bearer(token))
    assert detached.status_code == 204, detached.text
    # A client that wrongly puts secrets into the query string.
    wrong = await j.call("GET", f"/api/v1/me?access_token={token}")
    assert wrong.status_code == 401
    amazon = await j.amazon_token(user_id)
    assert (await j.call("GET", "/api/v1/me", params={"access_token": amazon})).status_code == 401
    signed_out = await j.call("DELETE", "/api/v1/sessions/current", headers=bearer(token))
    assert signed_out.status_code == 204
    assert (await j.call("GET", "/api/v1/me", headers=bearer(token))).status_code == 401


async def browser_sign_out(phone: Journeys) -> None:
    out = await phone.form("/signout", {})
    assert out.status_code == 303, out.text


async def retired_paths(j: Journeys) -> None:
    """Old clients still send handles in paths: 410 moved, nothing looked up."""
    old = await j.customer("Old Client")
    shy = await j.amazon_sign_in(await j.amazon_token(old.user_id, scope="profile:user_id"))
    flow_id = shy["flow"]["id"]
    authorization = await j.call("POST", "/api/v1/amazon/device-authorizations", json={})
    assert authorization.status_code == 201, authorization.text
    for method, path in (
        ("GET", f"/api/v1/flows/{flow_id}"),
        ("POST", f"/api/v1/flows/{flow_id}/link"),
        ("POST", f"/api/v1/flows/{flow_id}/register"),
        ("POST", f"/api/v1/flows/{flow_id}/handoff"),
        ("POST", f"/api/v1/amazon/device-authorizations/{authorization.json()['id']}/poll"),
    ):
        response = await j.call(method, path, json={})
        assert (response.status_code, response.json()["code"]) == (410, "moved"), path


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_sec01_no_secret_of_any_journey_reaches_the_server_output(
    tmp_path: Path, log_format: str
) -> None:
    seen = Secrets()
    with serve(tmp_path, log_format) as (url, log):
        async with (
            httpx.AsyncClient(base_url=url, timeout=20) as tv_http,
            httpx.AsyncClient(base_url=url, timeout=20) as phone_http,
            httpx.AsyncClient(base_url=url, timeout=20) as browser_http,
        ):
            tv, phone = Journeys(tv_http, seen), Journeys(phone_http, seen)
            username, email, password = await accounts_and_password_sign_in(tv)
            await email_verification(tv, tmp_path / "var", username, email, password)
            await amazon_api_sign_ins(tv, email, password)
            await browser_amazon_redirect(Journeys(browser_http, seen))
            await our_device_grant(tv, phone, username, password)
            await amazon_device_authorization(tv, url)
            await handoff_to_phone(tv, phone)
            await attach_detach_and_sign_out(tv)
            await browser_sign_out(phone)
            await retired_paths(tv)
    output = log.read_text(errors="replace")  # everything, now that the server stopped

    if log_format == "json":
        check_json_lines(output)
    else:
        # The request log names route templates: the paths that carry secrets are there.
        for route in (
            "/auth/amazon/callback",
            "/activate",
            "/api/v1/flows/{flow_id}/link",
            "/verify-email",
        ):
            assert f"route={route} " in output, route
    for kind in (
        "Amazon access token",
        "Amazon refresh token",
        "session token",
        "flow id",
        "authorization id",
        "device code",
        "user code",
        "Amazon user code",
        "hand-off code",
        "OAuth code",
        "OAuth state",
        "password",
        "e-mail",
        "e-mail link token",
    ):
        assert seen.found.get(kind), f"the journeys used no {kind}"
    leaks = seen.leaks(output)
    lines = [
        line
        for line in output.splitlines()
        if any(value in line for values in leaks.values() for value in values)
    ]
    assert leaks == {}, "secrets in the server output:\n" + "\n".join(lines[:30])


def check_json_lines(output: str) -> None:
    """Every line is one JSON object (but the start-up banner); the request log and the
    Amazon call log are there with their fields."""
    events = []
    for line in output.splitlines():
        # The command's own plain lines before the server starts: the banner and the
        # worker plan's note (`lwa-accounts serve: serving with 1 worker, not 2: ...`).
        if line.startswith(("lwa-accounts serving on ", "lwa-accounts serve: ")):
            continue
        event = json.loads(line)
        assert isinstance(event, dict), line
        assert {"timestamp", "level", "event", "logger"} <= set(event), line
        events.append(event)
    requests = [e for e in events if e["event"] == "request"]
    routes = {(e["method"], e["route"], e["status"]) for e in requests}
    for expected in (
        ("GET", "/auth/amazon/callback", 303),
        ("GET", "/activate", 200),
        ("GET", "/api/v1/me", 401),
        ("POST", "/api/v1/flows/{flow_id}/link", 410),
        ("POST", "/api/v1/sessions", 201),
    ):
        assert expected in routes, expected
    assert all(re.fullmatch(r"[0-9a-f]{16}", e["request_id"]) for e in requests)
    assert all(isinstance(e["duration_ms"], float) for e in requests)
    assert any(e["account_id"] for e in requests if e["route"] == "/api/v1/me")
    calls = {e["endpoint"] for e in events if e["event"] == "amazon_call"}
    # The authorization code exchange, tokeninfo and profile, the code pair and its polls.
    assert calls >= {"token", "tokeninfo", "profile", "codepair", "device_token"}, calls
    for call in (e for e in events if e["event"] == "amazon_call"):
        assert set(call) >= {"endpoint", "outcome", "status", "duration_ms", "retries"}
    assert not any(e["logger"] == "uvicorn.access" for e in events)
