"""What the Amazon flows answer: signed in, a step needed, or finished elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

from lwa_accounts.core.decide import Prefill
from lwa_accounts.core.models import Account, AmazonLink, PendingFlow
from lwa_accounts.flows.sessions import SignedIn


@dataclass(frozen=True, slots=True)
class SignedInWithAmazon:
    created: bool  # a new account was made for this Amazon identity
    signed_in: SignedIn
    # The account's Amazon link as this sign-in left it, so rendering reads nothing again;
    # None when the flow did not have it at hand (the edge reads it then).
    link: AmazonLink | None = None


@dataclass(frozen=True, slots=True)
class LinkRequired:
    """An account holds the Amazon email: its password must be proven before linking."""

    flow_id: str  # shown to the originator once; stored only hashed
    flow: PendingFlow
    email: str  # the account's email (the person typed it at Amazon: names nothing new)


@dataclass(frozen=True, slots=True)
class RegistrationRequired:
    flow_id: str
    flow: PendingFlow
    prefill: Prefill
    required: frozenset[str]


@dataclass(frozen=True, slots=True)
class FlowCompleted:
    """Finished on another device; the originator collects its session by polling."""

    account: Account


@dataclass(frozen=True, slots=True)
class RegistrationForm:
    username: str  # blank: derived from the email or name
    name: str
    email: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class Attached:
    account: Account
    link: AmazonLink
    signed_in: SignedIn | None  # the rotated browser session, when asked for


SignInOutcome = SignedInWithAmazon | LinkRequired | RegistrationRequired
FlowFinished = SignedInWithAmazon | FlowCompleted
