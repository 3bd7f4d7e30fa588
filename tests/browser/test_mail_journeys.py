"""E-mail journeys in headless Chromium, reading the mail where a developer would: the
development mailbox at /_dev/mail (no SMTP configured, as with `make run`).

- A new user registers, finds the confirmation message in the mailbox (its text and HTML
  parts on screen), opens the link, confirms, and /account says the address is confirmed;
  the link, opened again, is refused with a page that says it was used.
- The same user forgets the password: "Forgot your password?" on /signin, the reset
  message in the mailbox, a new password from its link, then a sign-in with it (the old
  one refused).

Screenshots (the pages and the messages' HTML): test-artifacts/mail/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tv.live import LiveServer, SteerableClock, live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "mail"
WAIT_MS = 20_000
PASSWORD = "tangerine-elephant-42"
NEW_PASSWORD = "marmalade-giraffe-77"

if not Path(CHROMIUM).exists() and os.environ.get("LWA_ACCOUNTS_REQUIRE_SERVICES") != "1":
    pytest.skip("Chromium is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from tests.browser.artifacts import save_screenshot  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("mail-browser"), clock=SteerableClock()) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    try:
        yield opened
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png", full_page=True)


def open_newest_mail(page: Page, base: str, *, to: str, kind: str, name: str) -> str:
    """Open the newest message of ``kind`` to ``to`` in the development mailbox; its text."""
    page.goto(base + "/_dev/mail")
    row = page.locator("table.mailbox tbody tr").filter(has_text=to).filter(has_text=kind).first
    expect(row).to_be_visible()
    shot(page, f"{name}-mailbox")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Text")).to_be_visible()
    # The HTML part is on screen in its sandboxed frame, rendered.
    text = page.locator("pre.mail-text").inner_text()
    frame = page.frame_locator("iframe.mail-html")
    first_line = text.strip().splitlines()[0][:30]
    expect(frame.get_by_text(first_line).first).to_be_visible()
    shot(page, f"{name}-message")
    # A full-page capture leaves a sandboxed (cross-origin) frame blank: the HTML part is
    # captured on its own too, as the recipient's mail program would show it.
    html_part = page.locator("iframe.mail-html").get_attribute("src")
    assert html_part
    page.goto(base + html_part)
    expect(page.get_by_text(first_line).first).to_be_visible()
    shot(page, f"{name}-html")
    return text


def link_in(text: str, base: str, path: str) -> str:
    found = re.search(re.escape(base + path) + r"\?token=[A-Za-z0-9._\-:%]+", text)
    assert found, f"no {path} link in the message:\n{text}"
    return found.group(0)


def test_register_then_confirm_the_address_from_the_mailbox(page: Page, server: LiveServer) -> None:
    base = server.url
    page.goto(base + "/register")
    page.get_by_label("Username", exact=True).fill("grace")
    page.get_by_label("Email", exact=True).fill("grace@example.org")
    page.get_by_label("Name", exact=True).fill("Grace Hopper")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(re.escape(base + "/account")))
    expect(page.get_by_text("grace@example.org").first).to_be_visible()
    expect(page.get_by_text(re.compile("not (yet )?confirmed", re.I)).first).to_be_visible()
    shot(page, "verify-account-unconfirmed")

    text = open_newest_mail(page, base, to="grace@example.org", kind="verify_email", name="verify")
    assert re.search(r"\b\d{3}[ -]?\d{3}\b", text), "the message also carries a short code"
    page.goto(link_in(text, base, "/verify-email"))
    expect(page.get_by_role("heading", name="Confirm your e-mail address")).to_be_visible()
    shot(page, "verify-confirm-page")
    page.get_by_role("button", name="Confirm this address").click()
    # Signed in on this browser: back to /account, which says so.
    page.wait_for_url(re.compile(re.escape(base + "/account?done=email-verified")))
    expect(page.get_by_text("Your e-mail address is confirmed.")).to_be_visible()
    expect(page.get_by_text(re.compile("not (yet )?confirmed", re.I))).to_have_count(0)
    shot(page, "verify-account-confirmed")

    # ---- the link works once: opened again, the page says so and offers a new one
    page.goto(link_in(text, base, "/verify-email"))
    expect(page.get_by_text(re.compile("already (been )?used", re.I)).first).to_be_visible()
    shot(page, "verify-link-used")


def test_forgotten_password_reset_through_the_mailbox(page: Page, server: LiveServer) -> None:
    base = server.url
    page.goto(base + "/signin")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url(re.compile(re.escape(base + "/forgot")))
    page.get_by_label("Username or email", exact=True).fill("grace")
    shot(page, "reset-forgot")
    page.get_by_role("button", name="Send me a link").click()
    page.wait_for_url(re.compile(re.escape(base + "/forgot/sent")))
    shot(page, "reset-sent")

    # The message is queued after the answer (the answer never depends on the account).
    text = ""
    for _ in range(50):
        page.goto(base + "/_dev/mail")
        if page.locator("table.mailbox tbody tr").filter(has_text="reset_password").count():
            break
        page.wait_for_timeout(100)
    text = open_newest_mail(page, base, to="grace@example.org", kind="reset_password", name="reset")
    page.goto(link_in(text, base, "/reset-password"))
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    shot(page, "reset-form")
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(re.compile(re.escape(base + "/reset-password/done")))
    shot(page, "reset-done")

    page.goto(base + "/signin")
    page.get_by_label("Username or email", exact=True).fill("grace")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(base + "/account")))
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    shot(page, "reset-signed-in")
