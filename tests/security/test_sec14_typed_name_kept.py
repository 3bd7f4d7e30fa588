"""Item 14: profile sync never overwrites what a person typed (name: ``fill_empty`` by
default).

security.md item 14 makes profile sync a per-field policy (``never | fill_empty |
always``) with the name on ``fill_empty``: a name the person typed at registration stays,
whatever Amazon's profile says later, through linking by password, later Amazon sign-ins
and attaching Amazon while signed in (issue 13 saw it replaced on attach). Before the
policy (``core.profile_sync``) ``flows.amazon_profile.sync_profile`` copied Amazon's name
onto the account at every sign-in and attach, and these tests failed.
"""

from __future__ import annotations

import html
import re

from tests.e2e.amazon_harness import ADA, PASSWORD
from tests.security.api_calls import link_flow
from tests.security.service import (
    Service,
    amazon_sign_in,
    bearer,
    browser_sign_in,
    me,
    mint,
    password_token,
)
from tests.web.test_amazon_pages import form_fields, through_amazon

TYPED = "Ada L."  # what Ada typed; her Amazon profile says "Ada Lovelace"


async def register_ada(service: Service) -> None:
    client = await service.client()
    response = await client.post(
        "/api/v1/accounts",
        json={"username": "ada", "email": "ada@example.com", "name": TYPED, "password": PASSWORD},
    )
    assert response.status_code == 201, response.text


async def test_sec14_a_typed_name_survives_linking_and_amazon_sign_ins(service: Service) -> None:
    await register_ada(service)
    await service.confirm_email("ada@example.com")  # a link step needs a confirmed address
    tv = await service.client()
    flow_id = (await amazon_sign_in(tv, ADA)).json()["flow"]["id"]
    linked = await link_flow(tv, flow_id, PASSWORD)
    assert linked.status_code == 201, linked.text
    again = await amazon_sign_in(tv, ADA)
    assert again.status_code == 201, again.text
    assert again.json()["account"]["name"] == TYPED


async def test_sec14_a_typed_name_survives_attaching_amazon(service: Service) -> None:
    await register_ada(service)
    client = await service.client()
    token = await password_token(client, "ada")
    attached = await client.post(
        "/api/v1/me/amazon", json={"access_token": await mint(client, ADA)}, headers=bearer(token)
    )
    assert attached.status_code == 200, attached.text
    assert (await me(client, token)).json()["account"]["name"] == TYPED


async def test_sec14_a_name_typed_on_the_account_page_survives_linking_from_it_and_unlinking(
    service: Service,
) -> None:
    """Issue 13 as reported: linking Amazon from /account replaced the account's own name
    with Amazon's, and it stayed after unlinking. Now the name typed on /account stays
    through linking, unlinking and linking again; only "use this" copies Amazon's over."""
    await register_ada(service)
    browser = await service.client()
    await browser_sign_in(browser, "ada")
    profile = form_fields((await browser.get("/account")).text, "/account/profile")
    saved = await browser.post("/account/profile", data=profile | {"name": "Countess of L."})
    assert saved.status_code == 303, saved.text

    async def name() -> str:
        return str(await service.scalar("SELECT name FROM accounts WHERE username = 'ada'"))

    for _ in range(2):  # link, unlink, and again
        page = await browser.get("/account")
        start = await browser.post(
            "/account/amazon/link", data=form_fields(page.text, "/account/amazon/link")
        )
        landed = await through_amazon(browser, start)
        assert landed.headers["location"] == "/account?amazon=linked", landed.text
        assert await name() == "Countess of L."
        page = await browser.get("/account")
        assert "What Amazon last sent" in page.text
        assert "<dd>Countess of L.</dd>" in page.text
        unlink = form_fields(page.text, "/account/amazon/unlink")
        assert (await browser.post("/account/amazon/unlink", data=unlink)).status_code == 303
        assert await name() == "Countess of L."
    # "Use this" is the one way Amazon's name gets in: the person's own click.
    page = await browser.get("/account")
    start = await browser.post(
        "/account/amazon/link", data=form_fields(page.text, "/account/amazon/link")
    )
    await through_amazon(browser, start)
    page = await browser.get("/account")
    use = [
        fields
        for fields in all_forms(page.text, "/account/profile/use-amazon")
        if fields.get("field") == "name"
    ]
    assert len(use) == 1
    assert (await browser.post("/account/profile/use-amazon", data=use[0])).status_code == 303
    assert await name() == "Ada Lovelace"  # the emulated Amazon's name for Ada


def all_forms(page: str, action: str) -> list[dict[str, str]]:
    """The named inputs of every form posting to ``action``."""
    found = []
    for match in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page, re.S):
        if f'action="{action}"' not in match.group(1):
            continue
        fields = {}
        for tag in re.findall(r"<input\b[^>]*>", match.group(2)):
            named = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag))
            if "name" in named:
                fields[named["name"]] = html.unescape(named.get("value", ""))
        found.append(fields)
    return found
