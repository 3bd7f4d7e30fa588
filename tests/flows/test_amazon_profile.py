"""Amazon profile data on our side: checked prefill and derived usernames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwa_accounts.core.decide import Prefill
from lwa_accounts.core.models import AmazonProfile
from lwa_accounts.core.validation import Valid, normalise_username
from lwa_accounts.flows.amazon.profile import checked_prefill, username_base

USER = "amzn1.account.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.mark.parametrize(
    ("email", "name", "expected"),
    [
        ("ada@example.com", "Ada", "ada"),
        ("Ada.Lovelace+tv@example.com", None, "ada.lovelace.tv"),
        ("josé.ñandú@example.com", None, "jose.nandu"),
        ("a@example.com", "Grace Hopper", "grace.hopper"),  # too short: the name instead
        (None, "Zoë  Q.", "zoe.q"),
        (None, "李小龙", "user"),  # nothing ASCII left
        ("__--@x.org", None, "user"),
        ("x" * 60 + "@example.com", None, "x" * 28),
    ],
)
def test_username_base(email: str | None, name: str | None, expected: str) -> None:
    assert username_base(email, name) == expected


@given(st.one_of(st.none(), st.emails()), st.one_of(st.none(), st.text(max_size=120)))
def test_username_base_is_always_a_valid_username_with_room_for_a_suffix(
    email: str | None, name: str | None
) -> None:
    base = username_base(email, name)
    assert normalise_username(base) == Valid(base)
    assert normalise_username(base + "999") == Valid(base + "999")


def test_checked_prefill_drops_what_a_form_would_refuse() -> None:
    profile = AmazonProfile(
        user_id=USER,
        client_id="c",
        name="Ada\u202eLovelace",  # a bidi override: not a name we copy
        email="not-an-email",
        postal_code="980\x0052",
    )
    assert checked_prefill(profile) == Prefill(name=None, email=None, postal_code=None)
    good = AmazonProfile(
        user_id=USER, client_id="c", name=" Ada ", email="Ada@Example.com", postal_code=" 98052 "
    )
    assert checked_prefill(good) == Prefill(
        name="Ada", email="Ada@Example.com", postal_code="98052"
    )
