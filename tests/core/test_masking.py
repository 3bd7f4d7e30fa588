"""core/masking.py: an address shown enough to be recognised, not learnt."""

from __future__ import annotations

from lwa_accounts.core.masking import MASK, mask_email


def test_keeps_the_first_letter_and_the_domain_only() -> None:
    assert mask_email("nora@example.org") == "n•••@example.org"
    assert mask_email("  n@example.org ") == "n•••@example.org"


def test_hides_the_length_of_the_local_part() -> None:
    assert mask_email("ab@x.example") == mask_email("abcdefgh@x.example")


def test_anything_not_an_address_is_the_mask_alone() -> None:
    for value in ("not an address", "@example.org", "nora@", ""):
        assert mask_email(value) == MASK
