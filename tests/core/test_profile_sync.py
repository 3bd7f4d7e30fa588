"""The profile sync decision (security.md item 14): per-field policies and the email rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwa_accounts.core.decide import Prefill
from lwa_accounts.core.profile_sync import (
    FIELD_POLICIES,
    EmailAction,
    FieldPolicy,
    LocalProfile,
    SyncPlan,
    SyncPolicy,
    email_action,
    field_update,
    is_empty,
    plan_sync,
)

# Values a field may hold: missing, blank, or text (a few fixed ones so equal values occur).
values = st.one_of(
    st.none(),
    st.sampled_from(["", "  ", "Ada Lovelace", "Ada King", "98052", "10115"]),
    st.text(max_size=20),
)
policies = st.sampled_from(FIELD_POLICIES)


def after(policy: FieldPolicy, local: str | None, amazon: str | None) -> str | None:
    """The field's value once the update (if any) is written."""
    update = field_update(policy, local, amazon)
    return local if update is None else update


def test_the_policies_and_defaults_are_those_of_item_14() -> None:
    assert FIELD_POLICIES == ("never", "fill_empty", "always")
    assert SyncPolicy() == SyncPolicy(name="fill_empty", postal_code="always")


@pytest.mark.parametrize(
    ("policy", "local", "amazon", "expected"),
    [
        ("never", "Ada L.", "Ada Lovelace", None),
        ("never", None, "Ada Lovelace", None),
        ("never", "", "Ada Lovelace", None),
        ("fill_empty", "Ada L.", "Ada Lovelace", None),
        ("fill_empty", None, "Ada Lovelace", "Ada Lovelace"),
        ("fill_empty", " ", "Ada Lovelace", "Ada Lovelace"),
        ("fill_empty", None, None, None),
        ("always", "98052", "10115", "10115"),
        ("always", "98052", None, None),
        ("always", "98052", "", None),
        ("always", "98052", "98052", None),  # nothing to write
    ],
)
def test_field_update(
    policy: FieldPolicy, local: str | None, amazon: str | None, expected: str | None
) -> None:
    assert field_update(policy, local, amazon) == expected


@given(values, values)
def test_never_never_changes_a_field(local: str | None, amazon: str | None) -> None:
    assert field_update("never", local, amazon) is None


@given(values, values)
def test_fill_empty_changes_only_an_empty_field(local: str | None, amazon: str | None) -> None:
    if field_update("fill_empty", local, amazon) is not None:
        assert is_empty(local)
        assert after("fill_empty", local, amazon) == amazon
    if not is_empty(local):
        assert after("fill_empty", local, amazon) == local


@given(values, values)
def test_always_follows_amazon_when_amazon_has_a_value(
    local: str | None, amazon: str | None
) -> None:
    if not is_empty(amazon):
        assert after("always", local, amazon) == amazon


@given(policies, values, values)
def test_amazons_empty_value_never_blanks_a_local_one(
    policy: FieldPolicy, local: str | None, amazon: str | None
) -> None:
    if is_empty(amazon):
        assert field_update(policy, local, amazon) is None
    # Whatever the policy, a written value is never empty.
    update = field_update(policy, local, amazon)
    assert update is None or not is_empty(update)


@given(policies, values, values)
def test_an_update_is_never_a_no_op(
    policy: FieldPolicy, local: str | None, amazon: str | None
) -> None:
    update = field_update(policy, local, amazon)
    assert update is None or update != local


def local(
    *,
    email: str | None = "ada@example.com",
    has_password: bool = True,
    last_amazon_email: str | None = "ada@example.com",
    name: str | None = "Ada L.",
    postal_code: str | None = "98052",
) -> LocalProfile:
    return LocalProfile(
        name=name,
        postal_code=postal_code,
        email=email,
        has_password=has_password,
        last_amazon_email=last_amazon_email,
    )


@pytest.mark.parametrize(
    ("profile", "amazon_email", "expected"),
    [
        (local(), None, "keep"),  # Amazon shares no email: nothing happens
        (local(), "ADA@example.com", "keep"),  # unchanged at Amazon (case does not count)
        # Changed at Amazon:
        (local(has_password=False), "ada@new.example", "take_if_free"),
        (local(has_password=True), "ada@new.example", "pending"),  # the recovery address
        (local(email=None, has_password=True), "ada@new.example", "pending"),
        (local(email=None, has_password=False), "ada@new.example", "take_if_free"),
        # Changed at Amazon to what the account already holds: clear a pending change.
        (local(email="ada@new.example"), "Ada@New.example", "clear_pending"),
        (local(last_amazon_email=None, has_password=False), "ada@example.com", "clear_pending"),
    ],
)
def test_email_action(profile: LocalProfile, amazon_email: str | None, expected: str) -> None:
    assert email_action(profile, amazon_email) == expected


@given(
    st.one_of(st.none(), st.emails()),
    st.one_of(st.none(), st.emails()),
    st.one_of(st.none(), st.emails()),
)
def test_a_password_account_never_takes_amazons_email(
    email: str | None, last_seen: str | None, amazon_email: str | None
) -> None:
    profile = local(email=email, has_password=True, last_amazon_email=last_seen)
    action: EmailAction = email_action(profile, amazon_email)
    assert action != "take_if_free"


def test_plan_sync_applies_each_fields_policy() -> None:
    amazon = Prefill(name="Ada Lovelace", email="ada@example.com", postal_code="10115")
    assert plan_sync(local(), amazon, SyncPolicy()) == SyncPlan(
        name=None, postal_code="10115", email="keep"
    )
    assert plan_sync(local(name=""), amazon, SyncPolicy()).name == "Ada Lovelace"
    everything = SyncPolicy(name="always", postal_code="always")
    assert plan_sync(local(), amazon, everything).name == "Ada Lovelace"
    nothing = SyncPolicy(name="never", postal_code="never")
    assert plan_sync(local(name="", postal_code=None), amazon, nothing) == SyncPlan(
        name=None, postal_code=None, email="keep"
    )
