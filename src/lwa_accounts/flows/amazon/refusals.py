"""Refusing an Amazon sign-in step: audited as ``amazon.refused`` (a kept event, so the
trail survives the rollback the raise causes), then raised."""

from __future__ import annotations

from typing import NoReturn

from lwa_accounts.core.decide import Reject
from lwa_accounts.core.models import AmazonProfile
from lwa_accounts.errors import (
    AccountDisabled,
    AlreadyLinked,
    AmazonError,
    AmazonLinkedElsewhere,
    EmailAccountLinkedToOtherAmazon,
    LwaAccountsError,
    SignupClosed,
)
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx


def refuse(
    tx: Tx,
    error: LwaAccountsError,
    *,
    account_id: str | None = None,
    profile: AmazonProfile | None = None,
    context: str | None = None,
) -> NoReturn:
    """Audit the refusal (reason = the error's stable code, then ``context``, e.g. the
    hand-off row) and raise it."""
    detail = f"reason={error.code}" + (f" {context}" if context else "")
    tx.audit(Event.AMAZON_REFUSED, account_id=account_id, profile=profile, detail=detail)
    raise error


def audit_refusal(tx: Tx, reason: str) -> None:
    """Audit a refused attempt that never reached a flow (e.g. a forged or replayed
    callback ``state``)."""
    tx.audit(Event.AMAZON_REFUSED, detail=f"reason={reason}")


def audit_refused_token(tx: Tx, error: AmazonError) -> None:
    """Audit a token Amazon's checks refused (another app's, expired, unknown)."""
    audit_refusal(tx, error.code)


def reject_error(decision: Reject) -> LwaAccountsError:
    match decision.code:
        case "amazon_linked_elsewhere":
            return AmazonLinkedElsewhere()
        case "email_account_linked_to_other_amazon":
            return EmailAccountLinkedToOtherAmazon()
        case "already_linked":
            return AlreadyLinked()
        case "account_disabled":
            return AccountDisabled()
        case "signup_closed":
            return SignupClosed()
