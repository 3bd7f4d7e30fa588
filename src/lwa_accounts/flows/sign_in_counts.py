"""What a unit of work's audit events say about sign-ins: ``(method, outcome)`` pairs.

Derived from the events every flow already records, so no flow counts anything itself:
``Deps.observe`` receives the events of each committed transaction (or the kept ones after
a rollback) and the web edge turns these pairs into ``lwa_accounts_sign_ins_total``.

- ``session.started`` with ``method=password|amazon|device`` (an Amazon sign-in writes
  ``amazon.signed_in`` instead, with the same words) -> ``signed_in`` (``created``
  when the same transaction made the account: ``amazon.account_created``, or
  ``method=registration``, counted as ``password``);
- ``amazon.flow_started kind=link|registration`` -> ``link_required`` /
  ``registration_required``;
- ``amazon.refused reason=<code>`` -> ``amazon``, ``refused:<code>``;
- ``signin.failed`` / ``signin.throttled`` (a password checked and refused, also in a
  link step) -> ``password``, ``refused:invalid_credentials`` / ``account_disabled`` /
  ``too_many_attempts``;
- ``device.user_code_refused`` (a wrong code typed on /activate) -> ``device``,
  ``refused:invalid_user_code``.

Re-authentication and password changes start sessions too but are not sign-ins.
"""

from __future__ import annotations

from collections.abc import Iterable

from lwa_accounts.core.models import AuditEvent
from lwa_accounts.flows.audit import Event

SIGN_IN_METHODS = frozenset({"password", "amazon", "device"})
_PASSWORD_REFUSALS = {"disabled": "account_disabled", "throttled": "too_many_attempts"}
_FLOW_KINDS = {"link": "link_required", "registration": "registration_required"}


def facts(detail: str | None) -> dict[str, str]:
    """``key=value`` words of an event's detail."""
    pairs = (word.partition("=") for word in (detail or "").split())
    return {key: value for key, equals, value in pairs if equals}


def sign_in_outcomes(events: Iterable[AuditEvent]) -> list[tuple[str, str]]:
    """The ``(method, outcome)`` of each sign-in attempt the events record, in order."""
    events = list(events)
    created = any(e.kind == Event.AMAZON_ACCOUNT_CREATED for e in events)
    outcomes: list[tuple[str, str]] = []
    for event in events:
        detail = facts(event.detail)
        match event.kind:
            case Event.SESSION_STARTED | Event.AMAZON_SIGNED_IN:
                method = detail.get("method", "")
                if method == "registration":
                    outcomes.append(("password", "created"))
                elif method == "amazon":
                    outcomes.append(("amazon", "created" if created else "signed_in"))
                elif method in SIGN_IN_METHODS:
                    outcomes.append((method, "signed_in"))
            case Event.AMAZON_FLOW_STARTED:
                outcome = _FLOW_KINDS.get(detail.get("kind", ""))
                if outcome is not None:
                    outcomes.append(("amazon", outcome))
            case Event.AMAZON_REFUSED:
                outcomes.append(("amazon", "refused:" + detail.get("reason", "unknown")))
            case Event.SIGN_IN_FAILED | Event.SIGN_IN_THROTTLED:
                reason = "throttled" if event.kind == Event.SIGN_IN_THROTTLED else ""
                reason = reason or detail.get("reason", "")
                code = _PASSWORD_REFUSALS.get(reason, "invalid_credentials")
                outcomes.append(("password", "refused:" + code))
            case Event.DEVICE_USER_CODE_REFUSED:
                outcomes.append(("device", "refused:invalid_user_code"))
    return outcomes
