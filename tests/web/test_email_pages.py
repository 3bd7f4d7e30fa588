"""The e-mail pages (issue 13 item 2): /verify-email asks before it spends a link, says
why a link is refused and offers a new one; /account confirms by code, changes the
address through verification and edits the profile. Real form posts, CSRF included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from lwa_accounts.testing.mail import QueuedMail, code_in, link_in, queued_mail
from tests.security.service import (
    Service,
    browser_sign_in,
    running,
    security_settings,
)
from tests.web.test_amazon_pages import form_fields

PASSWORD = "tangerine-elephant-42"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Service]:
    async with running(security_settings(tmp_path)) as service:
        yield service


async def register_page(client: httpx.AsyncClient, username: str, email: str) -> None:
    page = await client.get("/register")
    fields = form_fields(page.text, "/register") | {
        "username": username,
        "email": email,
        "name": "Ada Lovelace",
        "password": PASSWORD,
    }
    response = await client.post("/register", data=fields)
    assert response.status_code == 303, response.text


async def last_mail(site: Service, to: str, kind: str = "verify_email") -> QueuedMail:
    found = [m for m in await queued_mail(site.database, to) if m.kind == kind]
    assert found, f"no {kind} mail to {to}"
    return found[-1]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def confirm_page(client: httpx.AsyncClient, mail: QueuedMail) -> httpx.Response:
    return await client.get(path_of(link_in(mail, "/verify-email?token=")))


async def account_form(client: httpx.AsyncClient, action: str) -> dict[str, str]:
    return form_fields((await client.get("/account")).text, action)


async def verified(site: Service, username: str) -> bool:
    value = await site.scalar("SELECT email_verified FROM accounts WHERE username = :u", u=username)
    return bool(value)


# ---- the link -----------------------------------------------------------------------------


async def test_registering_sends_a_link_that_a_get_never_spends(site: Service) -> None:
    browser = await site.client()
    await register_page(browser, "ada", "ada@example.com")
    mail = await last_mail(site, "ada@example.com")
    for _ in range(3):  # a mail scanner, a preview, the person: nothing spent
        page = await confirm_page(browser, mail)
        assert page.status_code == 200
        assert "ada@example.com" in page.text
        assert ">ada<" in page.text  # which account it confirms
        assert page.headers["referrer-policy"] == "no-referrer"
    assert not await verified(site, "ada")
    done = await browser.post("/verify-email", data=form_fields(page.text, "/verify-email"))
    assert (done.status_code, done.headers["location"]) == (303, "/account?done=email-verified")
    account = await browser.get(done.headers["location"])
    assert "Your e-mail address is confirmed." in account.text
    assert 'id="email-status">confirmed<' in account.text
    assert await verified(site, "ada")


async def test_a_link_works_signed_out_too(site: Service) -> None:
    await register_page(await site.client(), "ada", "ada@example.com")
    phone = await site.client()  # another device, not signed in
    page = await confirm_page(phone, await last_mail(site, "ada@example.com"))
    assert "You do not need to be signed in." in page.text
    done = await phone.post("/verify-email", data=form_fields(page.text, "/verify-email"))
    assert done.headers["location"] == "/verify-email/done"
    assert "Your e-mail address is confirmed." in (await phone.get("/verify-email/done")).text
    assert await verified(site, "ada")


@pytest.mark.parametrize(
    ("spoil", "status", "code"),
    [
        # The third character from the end is all signature (the last one partly padding).
        (lambda t: t[:-3] + ("A" if t[-3] != "A" else "B") + t[-2:], 400, "email_link_invalid"),
        (lambda t: t[:20], 400, "email_link_invalid"),
        (lambda t: "", 400, "email_link_invalid"),
        (lambda t: "%C3%A9%00" * 5, 400, "email_link_invalid"),
        (lambda t: "x" * 5000, 400, "email_link_invalid"),
    ],
)
async def test_an_altered_link_gets_a_page_that_says_so(
    site: Service, spoil: object, status: int, code: str
) -> None:
    browser = await site.client()
    await register_page(browser, "ada", "ada@example.com")
    token = link_in(await last_mail(site, "ada@example.com"), "/verify-email?token=").partition(
        "?token="
    )[2]
    page = await browser.get(f"/verify-email?token={spoil(token)}")  # type: ignore[operator]
    assert page.status_code == status
    assert f'data-refusal="{code}"' in page.text
    assert "Link not valid" in page.text
    assert 'action="/account/email/resend"' in page.text  # signed in: a new one, one click
    assert not await verified(site, "ada")


async def test_a_used_or_expired_link_says_which_and_offers_a_new_one(site: Service) -> None:
    browser = await site.client()
    await register_page(browser, "ada", "ada@example.com")
    mail = await last_mail(site, "ada@example.com")
    page = await confirm_page(browser, mail)
    fields = form_fields(page.text, "/verify-email")
    await browser.post("/verify-email", data=fields)
    used = await browser.post("/verify-email", data=fields)
    assert used.status_code == 410
    assert 'data-refusal="email_link_used"' in used.text
    assert "already used" in used.text
    # Expired: a new account's link, a day and a second later, opened signed out.
    await register_page(await site.client(), "bob", "bob@example.com")
    site.clock.advance(24 * 3600 + 1)
    stranger = await site.client()
    expired = await confirm_page(stranger, await last_mail(site, "bob@example.com"))
    assert expired.status_code == 410
    assert 'data-refusal="email_link_expired"' in expired.text
    assert 'href="/signin?next=/account"' in expired.text  # signed out: sign in for a new one
    fresh = await resend_from_refusal(site, "bob")
    assert fresh.status_code == 303
    assert (
        await confirm_page(stranger, await last_mail(site, "bob@example.com"))
    ).status_code == 200


async def resend_from_refusal(site: Service, username: str) -> httpx.Response:
    browser = await site.client()
    await browser_sign_in(browser, username)
    page = await browser.get("/account")
    return await browser.post(
        "/account/email/resend", data=form_fields(page.text, "/account/email/resend")
    )


async def test_a_link_for_another_account_is_refused_while_signed_in(site: Service) -> None:
    ada, mallory = await site.client(), await site.client()
    await register_page(ada, "ada", "ada@example.com")
    await register_page(mallory, "mallory", "mallory@example.com")
    mail = await last_mail(site, "ada@example.com")
    refused = await confirm_page(mallory, mail)
    assert refused.status_code == 403
    assert 'data-refusal="email_link_other_account"' in refused.text
    assert "signed in as <strong>mallory</strong>" in refused.text
    # Posting it anyway (a form copied from Ada's page) is refused the same way.
    fields = form_fields((await confirm_page(ada, mail)).text, "/verify-email")
    csrf = form_fields((await mallory.get("/account")).text, "/account/profile")["csrf_token"]
    posted = await mallory.post("/verify-email", data=fields | {"csrf_token": csrf})
    assert posted.status_code == 403
    assert not await verified(site, "ada")
    assert not await verified(site, "mallory")
    await ada.post("/verify-email", data=fields)  # still Ada's to use
    assert await verified(site, "ada")


# ---- the code and the change of address ------------------------------------------------------


async def test_the_code_on_the_account_page(site: Service) -> None:
    browser = await site.client()
    await register_page(browser, "ada", "ada@example.com")
    page = await browser.get("/account")
    assert 'id="email-unconfirmed"' in page.text
    fields = form_fields(page.text, "/account/email/code")
    wrong = await browser.post("/account/email/code", data=fields | {"code": "000000"})
    if wrong.status_code == 303:  # pragma: no cover - 1 in a million: the right code
        return
    assert wrong.status_code == 400
    assert "That code is not right" in wrong.text
    assert "tries left" in wrong.text
    code = code_in(await last_mail(site, "ada@example.com"))
    right = await browser.post("/account/email/code", data=fields | {"code": code})
    assert right.headers["location"] == "/account?done=email-verified"
    assert await verified(site, "ada")


async def test_changing_the_address_keeps_the_old_one_until_the_new_one_is_confirmed(
    site: Service,
) -> None:
    browser = await site.client()
    await register_page(browser, "ada", "ada@example.com")
    fields = await account_form(browser, "/account/email")
    asked = await browser.post("/account/email", data=fields | {"email": "ada@new.example"})
    assert asked.headers["location"] == "/account?done=email-sent"
    page = await browser.get(asked.headers["location"])
    assert "Waiting for you to confirm <strong>ada@new.example</strong>" in page.text
    assert "Your account keeps ada@example.com until then" in page.text
    notice = await last_mail(site, "ada@example.com", "notice_email_changed")
    assert "a•••@new.example" in notice.text
    mail = await last_mail(site, "ada@new.example")
    confirm = await confirm_page(browser, mail)
    await browser.post("/verify-email", data=form_fields(confirm.text, "/verify-email"))
    email = await site.scalar("SELECT email FROM accounts WHERE username = 'ada'")
    assert email == "ada@new.example"
    assert await verified(site, "ada")


async def test_changing_the_address_later_needs_the_password(site: Service) -> None:
    browser = await site.client()
    await register_page(browser, "ada", "ada@example.com")
    site.clock.advance(301)
    fields = await account_form(browser, "/account/email")
    refused = await browser.post("/account/email", data=fields | {"email": "mallory@evil.example"})
    assert refused.status_code == 403
    assert "needs your password" in refused.text
    wrong = await browser.post(
        "/account/email", data=fields | {"email": "mallory@evil.example", "password": "nope-nope"}
    )
    assert wrong.status_code == 401
    assert await queued_mail(site.database, "mallory@evil.example") == []
    before = browser.cookies.get("lwa_session")
    ok = await browser.post(
        "/account/email", data=fields | {"email": "ada@new.example", "password": PASSWORD}
    )
    assert ok.headers["location"] == "/account?done=email-sent"
    assert browser.cookies.get("lwa_session") != before  # proved again: a new session id
    assert (await browser.get("/account")).status_code == 200


async def test_cancel_and_resend(site: Service) -> None:
    browser = await site.client()
    await register_page(browser, "ada", "ada@example.com")
    fields = await account_form(browser, "/account/email")
    await browser.post("/account/email", data=fields | {"email": "ada@new.example"})
    resend = await account_form(browser, "/account/email/resend")
    assert (await browser.post("/account/email/resend", data=resend)).status_code == 303
    assert len(await queued_mail(site.database, "ada@new.example")) == 2
    cancel = await account_form(browser, "/account/email/cancel")
    done = await browser.post("/account/email/cancel", data=cancel)
    assert done.headers["location"] == "/account?done=email-cancelled"
    gone = await confirm_page(browser, await last_mail(site, "ada@new.example"))
    assert gone.status_code == 410


# ---- the profile ---------------------------------------------------------------------------


async def test_the_profile_form_saves_and_names_bad_fields(site: Service) -> None:
    browser = await site.client()
    await register_page(browser, "ada", "ada@example.com")
    fields = await account_form(browser, "/account/profile")
    assert fields["name"] == "Ada Lovelace"
    bad = await browser.post(
        "/account/profile", data=fields | {"name": " ", "postal_code": "1" * 40}
    )
    assert bad.status_code == 422
    assert 'id="name-error"' in bad.text
    assert 'id="postal_code-error"' in bad.text
    assert 'value="' + "1" * 40 + '"' in bad.text  # what was typed stays in the form
    ok = await browser.post(
        "/account/profile", data=fields | {"name": "Countess Ada", "postal_code": "SW1A 1AA"}
    )
    assert ok.headers["location"] == "/account?done=profile-saved"
    page = await browser.get("/account")
    assert "<dd>Countess Ada</dd>" in page.text
    assert "<dd>SW1A 1AA</dd>" in page.text
