"""decide(): every branch in a table, and properties over all combinations of facts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwa_accounts.core.decide import (
    AccountFacts,
    ConfirmLink,
    Create,
    Decision,
    Facts,
    LinkToCurrent,
    Policy,
    Prefill,
    Register,
    Reject,
    SignIn,
    decide,
    missing_fields,
    separate_account,
)

AMAZON = "amzn1.account.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
OTHER_AMAZON = "amzn1.account.BBBBBBBBBBBBBBBBBBBBBBBBBBBB"
FULL = Prefill(name="Ada Lovelace", email="ada@example.com", postal_code="98052")
NO_EMAIL = Prefill(name="Ada Lovelace", email=None, postal_code=None)


def acct(
    id: str = "acc_1",
    *,
    disabled: bool = False,
    has_password: bool = True,
    amazon: str | None = None,
    verified: bool = True,
) -> AccountFacts:
    """An account's facts; its address verified unless ``verified=False``."""
    return AccountFacts(
        id=id,
        disabled=disabled,
        has_password=has_password,
        amazon_user_id=amazon,
        email_verified=verified,
    )


def facts(
    *,
    linked: AccountFacts | None = None,
    by_email: AccountFacts | None = None,
    current: AccountFacts | None = None,
    profile: Prefill = FULL,
    signup: str = "auto",
    required: frozenset[str] = frozenset({"email", "name"}),
) -> Facts:
    return Facts(
        amazon_user_id=AMAZON,
        profile=profile,
        linked_account=linked,
        email_account=by_email,
        current_account=current,
        policy=Policy(signup=signup, required_fields=required),  # type: ignore[arg-type]
    )


TABLE: list[tuple[str, Facts, Decision]] = [
    # Returning user: the link decides, whatever the email says.
    ("returning", facts(linked=acct(amazon=AMAZON)), SignIn("acc_1")),
    (
        "returning, email now someone else's",
        facts(linked=acct(amazon=AMAZON), by_email=acct("acc_2")),
        SignIn("acc_1"),
    ),
    (
        "returning, disabled",
        facts(linked=acct(disabled=True, amazon=AMAZON)),
        Reject("account_disabled"),
    ),
    # New user, nothing matches.
    ("new, auto, complete", facts(), Create(FULL)),
    (
        "new, auto, email missing",
        facts(profile=NO_EMAIL),
        Register(NO_EMAIL, frozenset({"email"})),
    ),
    (
        "new, auto, only name required",
        facts(profile=NO_EMAIL, required=frozenset({"name"})),
        Create(NO_EMAIL),
    ),
    (
        "new, auto, postal code required but blank",
        facts(
            profile=Prefill(name="Ada", email="a@x.org", postal_code="  "),
            required=frozenset({"name", "postal_code"}),
        ),
        Register(
            Prefill(name="Ada", email="a@x.org", postal_code="  "), frozenset({"postal_code"})
        ),
    ),
    ("new, form", facts(signup="form"), Register(FULL, frozenset())),
    ("new, closed", facts(signup="closed"), Reject("signup_closed")),
    # Email collision: only ever a password-proven link.
    ("email match", facts(by_email=acct("acc_2")), ConfirmLink("acc_2", can_register_instead=True)),
    (
        "email match, signup closed",
        facts(by_email=acct("acc_2"), signup="closed"),
        ConfirmLink("acc_2", can_register_instead=False),
    ),
    (
        # Maybe a squatter's: a separate account without the email, never that one.
        "email match, linked to another Amazon",
        facts(by_email=acct("acc_2", amazon=OTHER_AMAZON)),
        Register(FULL.without_email(), frozenset({"email"})),
    ),
    (
        "email match, linked to another Amazon, closed",
        facts(by_email=acct("acc_2", amazon=OTHER_AMAZON), signup="closed"),
        Reject("email_account_linked_to_other_amazon"),
    ),
    (
        "email match, disabled",
        facts(by_email=acct("acc_2", disabled=True)),
        Reject("account_disabled"),
    ),
    (
        "email match, no password to prove",
        facts(by_email=acct("acc_2", has_password=False)),
        Register(FULL.without_email(), frozenset({"email"})),
    ),
    (
        "email match, no password, closed",
        facts(by_email=acct("acc_2", has_password=False), signup="closed"),
        Reject("signup_closed"),
    ),
    # An unverified address is no target (issue 13): as if nobody held it. The flows make
    # the account without the address and send it the verification mail (a claim).
    ("email match, unverified", facts(by_email=acct("acc_2", verified=False)), Create(FULL)),
    (
        "email match, unverified, form",
        facts(by_email=acct("acc_2", verified=False), signup="form"),
        Register(FULL, frozenset()),
    ),
    (
        "email match, unverified, closed",
        facts(by_email=acct("acc_2", verified=False), signup="closed"),
        Reject("signup_closed"),
    ),
    (
        "email match, unverified, linked to another Amazon",
        facts(by_email=acct("acc_2", amazon=OTHER_AMAZON, verified=False)),
        Create(FULL),
    ),
    (
        "email match, unverified, disabled",
        facts(by_email=acct("acc_2", disabled=True, verified=False)),
        Create(FULL),
    ),
    # Attaching from a signed-in account.
    ("attach", facts(current=acct("acc_3")), LinkToCurrent("acc_3")),
    (
        "attach, email belongs to another account",
        facts(current=acct("acc_3"), by_email=acct("acc_2")),
        LinkToCurrent("acc_3"),
    ),
    (
        "attach, already this account's identity",
        facts(current=acct("acc_3", amazon=AMAZON), linked=acct("acc_3", amazon=AMAZON)),
        SignIn("acc_3"),
    ),
    (
        "attach, identity linked elsewhere",
        facts(current=acct("acc_3"), linked=acct("acc_1", amazon=AMAZON)),
        Reject("amazon_linked_elsewhere"),
    ),
    (
        "attach, account has another identity",
        facts(current=acct("acc_3", amazon=OTHER_AMAZON)),
        Reject("already_linked"),
    ),
    ("attach, disabled", facts(current=acct("acc_3", disabled=True)), Reject("account_disabled")),
]


@pytest.mark.parametrize(
    ("facts_", "expected"), [(f, d) for _, f, d in TABLE], ids=[n for n, _, _ in TABLE]
)
def test_decide_table(facts_: Facts, expected: Decision) -> None:
    assert decide(facts_) == expected


def test_missing_fields_ignores_unknown_required_names() -> None:
    assert missing_fields(FULL, Policy(required_fields=frozenset({"shoe_size"}))) == frozenset()


def test_separate_account_never_creates_silently() -> None:
    assert separate_account(FULL, Policy(signup="auto", required_fields=frozenset({"name"}))) == (
        Register(FULL.without_email(), frozenset())
    )


# ---- properties ---------------------------------------------------------------------------

maybe_text = st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=12))
prefills = st.builds(Prefill, name=maybe_text, email=maybe_text, postal_code=maybe_text)
policies = st.builds(
    Policy,
    signup=st.sampled_from(["auto", "form", "closed"]),
    required_fields=st.frozensets(st.sampled_from(["email", "name", "postal_code", "other"])),
)


@st.composite
def consistent_facts(draw: st.DrawFn) -> Facts:
    """Facts as a store could report them: three accounts, at most one holding AMAZON."""
    pool = [
        AccountFacts(
            id=f"acc_{n}",
            disabled=draw(st.booleans()),
            has_password=draw(st.booleans()),
            amazon_user_id=draw(
                st.sampled_from([None, OTHER_AMAZON] + ([AMAZON] if n == 1 else []))
            ),
            email_verified=draw(st.booleans()),
        )
        for n in (1, 2, 3)
    ]
    maybe_account = st.one_of(st.none(), st.sampled_from(pool))
    return Facts(
        amazon_user_id=AMAZON,
        profile=draw(prefills),
        linked_account=pool[0] if pool[0].amazon_user_id == AMAZON else None,
        email_account=draw(maybe_account),
        current_account=draw(maybe_account),
        policy=draw(policies),
    )


@given(consistent_facts())
def test_sign_in_only_into_the_linked_account(f: Facts) -> None:
    decision = decide(f)
    if isinstance(decision, SignIn):
        assert f.linked_account is not None
        assert decision.account_id == f.linked_account.id
        assert not f.linked_account.disabled


@given(consistent_facts())
def test_an_amazon_email_alone_never_signs_in_or_links(f: Facts) -> None:
    unlinked = Facts(
        amazon_user_id=f.amazon_user_id,
        profile=f.profile,
        linked_account=None,
        email_account=f.email_account,
        current_account=None,
        policy=f.policy,
    )
    decision = decide(unlinked)
    assert not isinstance(decision, SignIn | LinkToCurrent)
    if f.email_account is not None and f.email_account.email_verified:
        # Never creates a second account over someone's email without a form either.
        assert not isinstance(decision, Create)


@given(consistent_facts())
def test_an_unverified_address_is_never_a_target(f: Facts) -> None:
    """Issue 13: an account holding the address unverified changes nothing: the decision
    is the one for nobody holding it, never that account's link step."""
    if f.email_account is None or f.email_account.email_verified:
        return
    nobody = Facts(
        amazon_user_id=f.amazon_user_id,
        profile=f.profile,
        linked_account=f.linked_account,
        email_account=None,
        current_account=f.current_account,
        policy=f.policy,
    )
    decision = decide(f)
    assert decision == decide(nobody)
    assert not (isinstance(decision, ConfirmLink) and decision.account_id == f.email_account.id)


@given(consistent_facts())
def test_confirm_link_targets_an_unlinked_account_with_a_password(f: Facts) -> None:
    decision = decide(f)
    if isinstance(decision, ConfirmLink):
        assert f.email_account is not None
        assert f.email_account.id == decision.account_id
        assert f.email_account.has_password
        assert f.email_account.email_verified
        assert f.email_account.amazon_user_id is None
        assert not f.email_account.disabled


@given(consistent_facts())
def test_closed_signup_never_creates_or_registers(f: Facts) -> None:
    if f.policy.signup == "closed":
        assert not isinstance(decide(f), Create | Register)


@given(consistent_facts())
def test_create_only_in_auto_mode_with_nothing_missing(f: Facts) -> None:
    decision = decide(f)
    if isinstance(decision, Create):
        assert f.policy.signup == "auto"
        assert missing_fields(decision.prefill, f.policy) == frozenset()
    if isinstance(decision, Register):
        assert decision.missing == missing_fields(decision.prefill, f.policy)


@given(consistent_facts())
def test_attach_never_moves_an_identity_between_accounts(f: Facts) -> None:
    decision = decide(f)
    if isinstance(decision, LinkToCurrent):
        assert f.current_account is not None
        assert decision.account_id == f.current_account.id
        assert f.linked_account is None
