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

from tests.e2e.amazon_harness import ADA, PASSWORD
from tests.security.api_calls import link_flow
from tests.security.service import (
    Service,
    amazon_sign_in,
    bearer,
    me,
    mint,
    password_token,
)

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
