"""Login with Amazon in headless Chromium, through the emulated Amazon's own pages.

A real uvicorn server (a thread, free loopback port) serves the app with the embedded
emulator at /_amazon, exactly as `make run` does. Journeys: a new user signs in with the
Amazon button on /signin (Amazon sign-in and consent pages) and lands on /account; signs
out and back in with Amazon; a person with a password account and the same email links
it only after giving the password (a wrong one first). Screenshots: test-artifacts/amazon/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import uvicorn

from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing.mail import code_in, queued_mail
from lwa_accounts.web.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "amazon"
PASSWORD = "tangerine-elephant-42"
WAIT_MS = 15_000

if not Path(CHROMIUM).exists() and os.environ.get("LWA_ACCOUNTS_REQUIRE_SERVICES") != "1":
    pytest.skip("Chromium is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from tests.browser.artifacts import save_screenshot  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        env="test",
        data_dir=tmp_path_factory.mktemp("amazon-browser"),
        public_url=url,
        secret_key="browser-test-secret-0123456789abcdef",
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield url, settings
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def base_url(served: tuple[str, Settings]) -> str:
    return served[0]


def mailed_code(settings: Settings, to: str) -> str:
    """The code of the last verification mail to ``to``, from the server's outbox (read
    in a thread of its own: the sync Playwright API owns this thread's event loop)."""

    async def read() -> str:
        database = Database.from_settings(settings)
        try:
            mail = [m for m in await queued_mail(database, to) if m.kind == "verify_email"]
        finally:
            await database.dispose()
        return code_in(mail[-1])

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, read()).result()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Page, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png", full_page=True)


def amazon_sign_in_and_consent(page: Page, customer: str) -> None:
    """On the emulated Amazon: pick the demo customer, then allow the data sharing."""
    expect(page.get_by_text("Emulated Amazon").first).to_be_visible(timeout=WAIT_MS)
    shot(page, f"amazon-signin-{customer.split()[0].lower()}")
    page.get_by_role("button", name=f"Continue as {customer}").click()
    expect(page.get_by_role("button", name="Allow")).to_be_visible(timeout=WAIT_MS)
    shot(page, f"amazon-consent-{customer.split()[0].lower()}")
    page.get_by_role("button", name="Allow").click()


def test_login_with_amazon_in_chromium(
    browser: Browser, base_url: str, served: tuple[str, Settings]
) -> None:
    # ---- a new user: the button on /signin, Amazon's pages, back signed in
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(base_url + "/signin")
    expect(page.get_by_text("Amazon is emulated")).to_be_visible()
    shot(page, "signin")
    page.get_by_role("link", name="Login with Amazon").click()
    amazon_sign_in_and_consent(page, "Ada Lovelace")
    page.wait_for_url(base_url + "/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_text("ada@example.com").first).to_be_visible()
    expect(page.get_by_role("heading", name="Amazon", exact=True)).to_be_visible()
    expect(page.get_by_text("Linked to")).to_be_visible()
    shot(page, "account-new-user")
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["lwa_session"]["httpOnly"] is True
    assert cookies["lwa_session"]["sameSite"] == "Lax"
    first_session = cookies["lwa_session"]["value"]

    # ---- signing out and in again with Amazon finds the same account
    page.get_by_role("button", name="Sign out").first.click()
    page.wait_for_url(base_url + "/signin?signed_out=1")
    page.get_by_role("link", name="Login with Amazon").click()
    # Amazon remembers the person and the consent: straight back to us.
    page.wait_for_url(base_url + "/account")
    expect(page.get_by_text("ada@example.com").first).to_be_visible()
    assert {c["name"]: c["value"] for c in context.cookies()}["lwa_session"] != first_session
    context.close()

    # ---- an existing password account with the same email: linked only with its password
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(base_url + "/register")
    page.get_by_label("Username", exact=True).fill("grace")
    page.get_by_label("Email", exact=True).fill("grace@example.com")
    page.get_by_label("Name", exact=True).fill("Grace Hopper")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(base_url + "/account")
    # Grace confirms her address with the mailed code (issue 13): only a confirmed
    # address is ever the target of an Amazon sign-in's link step.
    shot(page, "account-email-unconfirmed")
    page.get_by_label("Code from the e-mail").fill(mailed_code(served[1], "grace@example.com"))
    page.get_by_role("button", name="Confirm", exact=True).click()
    page.wait_for_url(base_url + "/account?done=email-verified")
    expect(page.get_by_text("Your e-mail address is confirmed.")).to_be_visible()
    shot(page, "account-email-confirmed")
    page.get_by_role("button", name="Sign out").first.click()
    page.wait_for_url(base_url + "/signin?signed_out=1")
    page.get_by_role("link", name="Login with Amazon").click()
    amazon_sign_in_and_consent(page, "Grace Hopper")
    page.wait_for_url(base_url + "/auth/amazon/link")
    expect(page.get_by_role("heading", name="You already have an account")).to_be_visible()
    expect(page.get_by_text("grace@example.com").first).to_be_visible()
    shot(page, "link-asks-password")
    page.get_by_label("Password of the account").fill("not-the-password")
    page.get_by_role("button", name="Link and sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The password is incorrect.")
    shot(page, "link-wrong-password")
    page.get_by_label("Password of the account").fill(PASSWORD)
    page.get_by_role("button", name="Link and sign in").click()
    page.wait_for_url(base_url + "/account")
    expect(page.get_by_text("Linked to")).to_be_visible()
    expect(page.get_by_role("button", name="Unlink Amazon")).to_be_visible()
    shot(page, "account-linked")
    context.close()
