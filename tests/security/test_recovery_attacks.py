"""Attacks on password recovery (issue 13 item 3; docs/security.md "Password recovery"),
each tried over HTTP on SQLite and PostgreSQL: finding out who has an account, using one
account's link or code on another, replaying, racing and guessing, keeping an old session,
reaching an unverified address, and flooding an inbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing.factories import make_account
from lwa_accounts.testing.mail import QueuedMail, code_in
from tests.e2e.amazon_harness import BASE_URL, PASSWORD
from tests.flows.recovery_helpers import reset_mails, reset_path_in, token_in
from tests.security.races import PARALLEL, database_url, describe, statuses
from tests.security.service import Service, password_token, register, running, security_settings
from tests.security.test_sec01_no_secret_in_logs import serve, unique
from tests.web.conftest import bearer, csrf_from, page_sign_in
from tests.web.recovery_helpers import (
    NEW_PASSWORD,
    ask_api,
    ask_page,
    mark_verified,
    newest_reset,
    reset_count,
)

__all__ = ["database_url"]  # the SQLite/PostgreSQL parameter, used by ``service`` below

CONFIRM = "/api/v1/password-resets/confirm"
# What differs between any two answers, whoever asks: the clock and the request's id.
PER_REQUEST_HEADERS = {"date", "x-request-id"}
Message = MutableMapping[str, Any]


@pytest.fixture
async def service(tmp_path: Path, database_url: str | None) -> AsyncIterator[Service]:
    """The real limits (five messages an hour per account), more room per IP: these tests
    ask for many accounts from one address."""
    settings = security_settings(tmp_path, database_url=database_url, email_limit_per_ip="200/hour")
    async with running(settings) as running_service:
        yield running_service


async def _verified(service: Service, client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    account = await register(client, name, f"{name}@example.com")
    await mark_verified(service.app, account["id"])
    return account


async def _signs_in(client: httpx.AsyncClient, username: str, password: str) -> bool:
    response = await client.post(
        "/api/v1/sessions", json={"username": username, "password": password}
    )
    return response.status_code == 201


def _answer(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted(
        (name, value) for name, value in response.headers.items() if name not in PER_REQUEST_HEADERS
    )
    return response.status_code, response.content, headers


# ---- enumeration --------------------------------------------------------------------------


async def test_recovery_enumeration_every_login_gets_the_same_answer(service: Service) -> None:
    client = await service.client()
    await _verified(service, client, "ada")
    await register(client, "bob", "bob@example.com")  # unverified
    no_email = await client.post(
        "/api/v1/accounts", json={"username": "carol", "name": "Carol", "password": PASSWORD}
    )
    assert no_email.status_code == 201
    dave = await _verified(service, client, "dave")
    async with service.database.transaction() as stores:
        await stores.accounts.set_disabled(dave["id"], True)
    await _verified(service, client, "erin")
    # erin's e-mail budget (5; her registration's verification mail was the first) is
    # spent: the next ask is throttled.
    for _ in range(4):
        await ask_api(client, "erin")
    assert await reset_count(service.app, "erin@example.com") == 4

    logins = ["ada", "ADA@example.com", "bob", "bob@example.com", "carol", "dave", "erin"]
    logins += ["nobody", "nobody@example.com", "\x00", "x" * 254]
    for ask in (ask_api, ask_page):
        answers = {login: _answer(await ask(client, login)) for login in logins}
        first = answers["ada"]
        assert first[0] in (202, 303)
        for login, answer in answers.items():
            assert answer == first, (ask.__name__, login, answer, first)

    assert await reset_count(service.app, "ada@example.com") == 4  # two logins, two channels
    assert await reset_count(service.app, "erin@example.com") == 4  # and her registration's
    for address in ("bob@example.com", "dave@example.com", "nobody@example.com"):
        assert await reset_count(service.app, address) == 0


async def test_recovery_enumeration_the_answer_leaves_before_the_account_is_looked_up(
    service: Service,
) -> None:
    """Timing: the look-up, the budget and the mail run after the last byte of the answer
    was sent, so how long they take cannot show in the answer."""
    setup = await service.client()
    await _verified(service, setup, "ada")
    asks_done: list[int] = []
    inner: Callable[..., Awaitable[None]] = service.transport.app

    async def watched(scope: Message, receive: Any, send: Any) -> None:
        async def watched_send(message: Message) -> None:
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if (
                last
                and scope["method"] == "POST"
                and scope["path"] in ("/forgot", "/api/v1/password-resets")
            ):
                asks_done.append(
                    await service.count("audit_events WHERE kind = 'password.reset_requested'")
                )
            await send(message)

        await inner(scope, receive, watched_send)

    transport = httpx.ASGITransport(app=watched)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        assert (await ask_api(client, "ada")).status_code == 202
        assert (await ask_page(client, "ada")).status_code == 303
    # At each answer's last byte, only the asks before it had been looked up.
    assert asks_done == [0, 1]
    assert await reset_count(service.app) == 2


# ---- one account's proof, another account ------------------------------------------------


async def test_recovery_a_link_or_code_for_one_account_cannot_reset_another(
    service: Service,
) -> None:
    client = await service.client()
    await _verified(service, client, "ada")
    await _verified(service, client, "bob")
    await ask_api(client, "ada")
    ada_mail = await newest_reset(service.app, "ada@example.com")
    body = {"login": "bob", "code": code_in(ada_mail), "new_password": NEW_PASSWORD}
    refused = await client.post(CONFIRM, json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "wrong_email_code"
    done = await client.post(
        CONFIRM, json={"token": token_in(ada_mail), "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 204
    assert await _signs_in(client, "ada", NEW_PASSWORD)
    assert await _signs_in(client, "bob", PASSWORD)
    assert not await _signs_in(client, "bob", NEW_PASSWORD)


async def test_recovery_used_expired_and_altered_links_are_refused_with_their_page(
    service: Service,
) -> None:
    client = await service.client()
    await _verified(service, client, "ada")
    await ask_api(client, "ada")
    mail = await newest_reset(service.app)
    path, token = reset_path_in(mail), token_in(mail)
    # A character inside the signature (its last one partly carries padding bits, which a
    # decoder may ignore: changing it is not always a change).
    inside = len(token) - 5
    flipped = token[:inside] + ("A" if token[inside] != "A" else "B") + token[inside + 1 :]
    for altered in (flipped, token[:40], "x", token + "x"):
        page = await client.get(f"/reset-password?token={altered}")
        assert (page.status_code, "This link does not work" in page.text) == (400, True)
        api = await client.post(CONFIRM, json={"token": altered, "new_password": NEW_PASSWORD})
        assert api.json()["code"] == "email_link_invalid"
    service.clock.advance(30 * 60 + 1)
    expired = await client.get(path)
    assert (expired.status_code, "This link has expired" in expired.text) == (410, True)
    api = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert api.json()["code"] == "email_link_expired"
    await ask_api(client, "ada")
    fresh = token_in(await newest_reset(service.app))
    await client.post(CONFIRM, json={"token": fresh, "new_password": NEW_PASSWORD})
    used = await client.get(f"/reset-password?token={fresh}")
    assert (used.status_code, "This link was already used" in used.text) == (410, True)
    for refused in (expired, used):
        assert 'href="/forgot"' in refused.text


async def test_recovery_a_newer_request_kills_the_older_link(service: Service) -> None:
    client = await service.client()
    await _verified(service, client, "ada")
    await ask_api(client, "ada")
    older = await newest_reset(service.app)
    await ask_api(client, "ada")
    newer = await newest_reset(service.app)
    for body in ({"token": token_in(older)}, {"login": "ada", "code": code_in(older)}):
        if body.get("code") == code_in(newer):
            continue  # one in a million: the two codes are the same
        refused = await client.post(CONFIRM, json=body | {"new_password": NEW_PASSWORD})
        assert refused.status_code in (400, 410), refused.text
    done = await client.post(CONFIRM, json={"token": token_in(newer), "new_password": NEW_PASSWORD})
    assert done.status_code == 204


# ---- races and guesses --------------------------------------------------------------------


async def test_recovery_parallel_redemptions_of_one_link_one_wins(service: Service) -> None:
    clients = [await service.client() for _ in range(PARALLEL)]
    await _verified(service, clients[0], "ada")
    await ask_api(clients[0], "ada")
    token = token_in(await newest_reset(service.app))
    passwords = [f"{NEW_PASSWORD}-{n}" for n in range(PARALLEL)]
    responses = await asyncio.gather(
        *(
            client.post(CONFIRM, json={"token": token, "new_password": password})
            for client, password in zip(clients, passwords, strict=True)
        )
    )
    assert statuses(responses) == {204: 1, 410: PARALLEL - 1}, describe(responses)
    winner = passwords[[r.status_code for r in responses].index(204)]
    assert await _signs_in(clients[0], "ada", winner)
    assert await service.count("audit_events WHERE kind = 'password.reset'") == 1


async def test_recovery_parallel_redemptions_of_one_code_one_wins(service: Service) -> None:
    clients = [await service.client() for _ in range(PARALLEL)]
    await _verified(service, clients[0], "ada")
    await ask_api(clients[0], "ada")
    code = code_in(await newest_reset(service.app))
    body = {"login": "ada", "code": code, "new_password": NEW_PASSWORD}
    responses = await asyncio.gather(*(client.post(CONFIRM, json=body) for client in clients))
    assert statuses(responses) == {204: 1, 400: PARALLEL - 1}, describe(responses)
    assert await service.count("audit_events WHERE kind = 'password.reset'") == 1


async def test_recovery_parallel_code_guesses_cannot_exceed_the_budget(service: Service) -> None:
    client = await service.client()
    await _verified(service, client, "ada")
    await ask_api(client, "ada")
    code = code_in(await newest_reset(service.app))
    guesses = [f"{n:06d}" for n in range(30) if f"{n:06d}" != code][:20]
    responses = await asyncio.gather(
        *(
            client.post(CONFIRM, json={"login": "ada", "code": g, "new_password": NEW_PASSWORD})
            for g in guesses
        )
    )
    assert statuses(responses) == {400: len(guesses)}, describe(responses)
    assert len({r.content for r in responses}) == 1  # one answer: no count, no "now dead"
    compared = await service.count(
        "audit_events WHERE kind = 'password.reset_refused' AND detail NOT LIKE '%login_budget%'"
    )
    assert compared <= 5
    assert await service.scalar("SELECT max(attempts) FROM email_codes") <= 5
    right = await client.post(
        CONFIRM, json={"login": "ada", "code": code, "new_password": NEW_PASSWORD}
    )
    assert right.status_code == 400  # the budget is gone: guessing on cannot pay off
    await ask_api(client, "ada")  # a new message brings no new guesses today
    newest = code_in(await newest_reset(service.app))
    again = await client.post(
        CONFIRM, json={"login": "ada", "code": newest, "new_password": NEW_PASSWORD}
    )
    assert again.status_code == 400
    assert await _signs_in(client, "ada", PASSWORD)


# ---- what a reset ends --------------------------------------------------------------------


async def test_recovery_old_sessions_die_after_a_reset(service: Service) -> None:
    attacker_tv, browser, owner = [await service.client() for _ in range(3)]
    await _verified(service, owner, "ada")
    tokens = [await password_token(attacker_tv, "ada") for _ in range(2)]
    assert (await page_sign_in(browser, "ada", PASSWORD)).status_code == 303
    assert (await browser.get("/api/v1/me")).status_code == 200
    await ask_page(owner, "ada")
    page = await owner.get(reset_path_in(await newest_reset(service.app)))
    form = {"csrf_token": csrf_from(page.text), "new_password": NEW_PASSWORD}
    form["token"] = token_in(await newest_reset(service.app))
    assert (await owner.post("/reset-password", data=form)).status_code == 303
    for token in tokens:
        assert (await attacker_tv.get("/api/v1/me", headers=bearer(token))).status_code == 401
    assert (await browser.get("/api/v1/me")).status_code == 401
    assert await service.count("sessions WHERE revoked_at IS NULL") == 0


# ---- where mail goes, and how much --------------------------------------------------------


async def test_recovery_reset_mail_never_goes_to_an_unverified_address(service: Service) -> None:
    client = await service.client()
    # A squatter registers with the victim's address; it is never verified.
    await register(client, "squatter", "victim@example.com")
    # An owner who verified one address, then changed to another not yet verified.
    moved = await _verified(service, client, "ada")
    async with service.database.transaction() as stores:
        await stores.accounts.update(moved["id"], email="ada@new.example", email_verified=False)
    for login in ("squatter", "victim@example.com", "ada", "ada@example.com", "ada@new.example"):
        await ask_api(client, login)
        await ask_page(client, login)
    # No reset mail at all (only the registrations' own verification mails are queued).
    assert await service.count("outbox WHERE kind = 'reset_password'") == 0


async def test_recovery_mail_bombing_is_limited(tmp_path: Path, database_url: str | None) -> None:
    settings = security_settings(tmp_path, database_url=database_url)  # 5/hour, 20/hour per IP
    async with running(settings) as service:
        client = await service.client()
        await _verified(service, client, "ada")
        responses = await asyncio.gather(*(ask_api(client, "ada") for _ in range(30)))
        assert statuses(responses) == {202: 30}
        # Per account, whoever asks: 5, the registration's verification mail the first.
        assert await reset_count(service.app) == 4
        async with service.database.transaction() as stores:
            for n in range(30):
                await make_account(
                    stores.accounts,
                    username=f"user{n}",
                    email=f"user{n}@example.com",
                    email_verified=True,
                )
        await asyncio.gather(*(ask_api(client, f"user{n}") for n in range(30)))
        # Per IP: 20 an hour, ada's registration and the 30 asks for ada included.
        assert await service.count("outbox") == 20


# ---- logs -----------------------------------------------------------------------------------


async def _arrived(database: Database, to: str, count: int) -> QueuedMail:
    """The ``count``-th reset message: a real server queues it after its answer has left."""
    for _ in range(100):
        mails = await reset_mails(database, to)
        if len(mails) >= count:
            return mails[count - 1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"reset message {count} never arrived for {to}")


@pytest.mark.slow
async def test_recovery_secrets_never_reach_the_server_output(tmp_path: Path) -> None:
    """A real ``lwa-accounts serve`` at DEBUG: the reset link's token (in a URL), the code,
    the passwords and the address appear in none of its output (security.md item 1)."""
    data_dir = tmp_path / "var"
    url_of_db = f"sqlite+aiosqlite:///{(data_dir / 'lwa-accounts.db').as_posix()}"
    secrets_used: list[str] = []
    codes: list[str] = []
    with serve(tmp_path, "json") as (url, log):
        # The server's own database and key (made in DATA_DIR), to read the outbox.
        database = Database.from_settings(
            Settings(env="development", data_dir=data_dir, database_url=url_of_db)
        )
        try:
            async with httpx.AsyncClient(base_url=url, timeout=20) as http:
                email, old = f"{unique('ada')}@example.com", unique("old-pw")
                created = await http.post(
                    "/api/v1/accounts",
                    json={"username": "ada", "email": email, "name": "Ada", "password": old},
                )
                assert created.status_code == 201, created.text
                async with database.transaction() as stores:
                    await stores.accounts.update(
                        created.json()["account"]["id"], email_verified=True
                    )
                assert (await ask_page(http, email)).status_code == 303
                mail = await _arrived(database, email, 1)
                token, first = token_in(mail), unique("new-pw")
                page = await http.get(reset_path_in(mail))
                fields = {"csrf_token": csrf_from(page.text), "token": token}
                done = await http.post("/reset-password", data=fields | {"new_password": first})
                assert done.status_code == 303, done.text
                assert (await ask_api(http, "ada")).status_code == 202
                mail = await _arrived(database, email, 2)
                code, second = code_in(mail), unique("new-pw")
                wrong = "000000" if code != "000000" else "111111"
                body = {"login": "ada", "new_password": second}
                refused = await http.post(CONFIRM, json=body | {"code": wrong})
                assert refused.status_code == 400
                done = await http.post(CONFIRM, json=body | {"code": code})
                assert done.status_code == 204, done.text
                secrets_used += [email, old, token, token_in(mail), first, second]
                codes += [code, wrong]
        finally:
            await database.dispose()
    output = log.read_text(errors="replace")
    assert '"route": "/reset-password"' in output  # the link's request was logged...
    leaked = [value for value in secrets_used if value in output]
    # ...and a six-digit code, as the person typed it or as the mail shows it.
    leaked += [
        code
        for code in codes
        for shown in (f'"{code}"', f"={code}", f"{code[:3]} {code[3:]}")
        if shown in output
    ]
    assert leaked == []
