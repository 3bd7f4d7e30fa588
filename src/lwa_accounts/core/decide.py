"""What to do with a verified Amazon identity: a pure decision from facts.

The flows look up the facts (the account linked to the Amazon ``user_id``, the account
holding the Amazon email, the signed-in account when attaching, the sign-up policy) and
ask :func:`decide` for exactly one decision. Two rules from security.md shape it:

- The key of a link is the Amazon ``user_id``. Only an existing link yields ``SignIn``.
- Amazon's email is a hint, never proof: an account found by email is only ever offered
  as ``ConfirmLink`` (the person must prove the local password), never signed in. When
  there is no password to prove, or that account is linked to another Amazon user (maybe
  a squatter's), the decision is a separate account without the email (``Register``).
- An unverified address is no target at all (issue 13): anyone can register any address,
  so an account holding Amazon's email unverified is treated as if nobody held it. The
  person is never asked for that account's password; the new account is made without the
  address, and the flows send the verification mail to it so that whoever reads it can
  claim it (``flows/email_claims.py``).

Standard library only (core/ is pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SignupMode = Literal["auto", "form", "closed"]

# The registration fields a policy may require, and the fields of a registration form.
REGISTRATION_FIELDS: tuple[str, ...] = ("email", "name", "postal_code")

RejectCode = Literal[
    "amazon_linked_elsewhere",
    "email_account_linked_to_other_amazon",
    "already_linked",
    "account_disabled",
    "signup_closed",
]


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the decision needs to know about one local account."""

    id: str
    disabled: bool
    has_password: bool
    amazon_user_id: str | None  # the Amazon identity linked to it, if any
    email_verified: bool = False  # its address was proven by a code sent to it


@dataclass(frozen=True, slots=True)
class Prefill:
    """Profile values Amazon gave us, usable for a new account (None: not given)."""

    name: str | None = None
    email: str | None = None
    postal_code: str | None = None

    def get(self, field: str) -> str | None:
        value: str | None = getattr(self, field)
        return value

    def without_email(self) -> Prefill:
        return Prefill(name=self.name, email=None, postal_code=self.postal_code)


@dataclass(frozen=True, slots=True)
class Policy:
    signup: SignupMode = "auto"
    required_fields: frozenset[str] = frozenset({"email", "name"})


@dataclass(frozen=True, slots=True)
class Facts:
    amazon_user_id: str
    profile: Prefill
    linked_account: AccountFacts | None  # found by the Amazon user_id
    email_account: AccountFacts | None  # found by the Amazon email (normalised)
    current_account: AccountFacts | None  # signed in and asking to attach Amazon
    policy: Policy


# ---- decisions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    account_id: str


@dataclass(frozen=True, slots=True)
class Create:
    prefill: Prefill


@dataclass(frozen=True, slots=True)
class ConfirmLink:
    account_id: str
    # Whether the person may create a separate account instead of proving the password.
    can_register_instead: bool


@dataclass(frozen=True, slots=True)
class Register:
    prefill: Prefill
    missing: frozenset[str]


@dataclass(frozen=True, slots=True)
class LinkToCurrent:
    account_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    code: RejectCode


Decision = SignIn | Create | ConfirmLink | Register | LinkToCurrent | Reject


def missing_fields(prefill: Prefill, policy: Policy) -> frozenset[str]:
    """The required fields Amazon did not supply (blank counts as missing)."""
    return frozenset(
        field
        for field in policy.required_fields
        if field in REGISTRATION_FIELDS and not (prefill.get(field) or "").strip()
    )


def new_account(prefill: Prefill, policy: Policy) -> Create | Register | Reject:
    """A new account for this Amazon identity: created at once, via a form, or refused."""
    if policy.signup == "closed":
        return Reject("signup_closed")
    missing = missing_fields(prefill, policy)
    if policy.signup == "auto" and not missing:
        return Create(prefill)
    return Register(prefill, missing)


def separate_account(prefill: Prefill, policy: Policy) -> Create | Register | Reject:
    """ "Create a separate account instead": the Amazon email belongs to another account,
    so it cannot be used for this one; the person always sees the form."""
    decision = new_account(prefill.without_email(), policy)
    if isinstance(decision, Create):
        return Register(decision.prefill, missing_fields(decision.prefill, policy))
    return decision


def _attach(facts: Facts, current: AccountFacts) -> Decision:
    if current.disabled:
        return Reject("account_disabled")
    linked = facts.linked_account
    if linked is not None:
        # Already this account's identity: nothing to do but sign in again.
        return SignIn(current.id) if linked.id == current.id else Reject("amazon_linked_elsewhere")
    if current.amazon_user_id is not None and current.amazon_user_id != facts.amazon_user_id:
        return Reject("already_linked")
    return LinkToCurrent(current.id)


def decide(facts: Facts) -> Decision:
    """One decision for a verified Amazon identity (see the module docstring)."""
    if facts.current_account is not None:
        return _attach(facts, facts.current_account)

    linked = facts.linked_account
    if linked is not None:
        return Reject("account_disabled") if linked.disabled else SignIn(linked.id)

    by_email = facts.email_account
    if by_email is None or not by_email.email_verified:
        # Nobody, or nobody proven: an unverified holder is never the target (above).
        return new_account(facts.profile, facts.policy)
    if by_email.amazon_user_id is not None:
        # The email's account is linked to a different Amazon identity (the link itself
        # would have been found by user_id otherwise). Its holder may be a squatter who
        # registered this address and linked an Amazon account of their own: never that
        # account, but a separate one without the email, so the person is not stuck.
        alternative = separate_account(facts.profile, facts.policy)
        if isinstance(alternative, Reject):
            return Reject("email_account_linked_to_other_amazon")
        return alternative
    if by_email.disabled:
        return Reject("account_disabled")
    if not by_email.has_password:
        # Nothing the person could prove: the email is simply taken.
        return separate_account(facts.profile, facts.policy)
    alternative = separate_account(facts.profile, facts.policy)
    return ConfirmLink(by_email.id, can_register_instead=not isinstance(alternative, Reject))
