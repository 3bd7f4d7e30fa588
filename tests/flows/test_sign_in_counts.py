"""flows/sign_in_counts.py: the (method, outcome) pairs a unit of work's audit events mean."""

from __future__ import annotations

from datetime import UTC, datetime

from lwa_accounts.core.models import AuditEvent
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.sign_in_counts import facts, sign_in_outcomes

AT = datetime(2026, 3, 1, tzinfo=UTC)


def event(kind: Event, detail: str | None = None) -> AuditEvent:
    return AuditEvent(kind=kind.value, at=AT, account_id="acc_1", detail=detail)


def test_each_sign_in_shape() -> None:
    cases = [
        (
            [event(Event.SESSION_STARTED, "method=password kind=device session=s")],
            "password",
            "signed_in",
        ),
        (
            [
                event(Event.ACCOUNT_REGISTERED, "method=password"),
                event(Event.SESSION_STARTED, "method=registration kind=browser session=s"),
            ],
            "password",
            "created",
        ),
        (
            [
                event(Event.AMAZON_ACCOUNT_CREATED),
                event(Event.SESSION_STARTED, "method=amazon kind=device session=s"),
                event(Event.AMAZON_SIGNED_IN, "via=x session=s"),
            ],
            "amazon",
            "created",
        ),
        (
            [event(Event.SESSION_STARTED, "method=amazon kind=device session=s")],
            "amazon",
            "signed_in",
        ),
        (
            [event(Event.SESSION_STARTED, "method=device kind=device session=s")],
            "device",
            "signed_in",
        ),
        ([event(Event.AMAZON_FLOW_STARTED, "kind=link")], "amazon", "link_required"),
        (
            [event(Event.AMAZON_FLOW_STARTED, "kind=registration")],
            "amazon",
            "registration_required",
        ),
        (
            [event(Event.AMAZON_REFUSED, "reason=token_for_another_app")],
            "amazon",
            "refused:token_for_another_app",
        ),
        (
            [event(Event.SIGN_IN_FAILED, "reason=wrong_password")],
            "password",
            "refused:invalid_credentials",
        ),
        ([event(Event.SIGN_IN_FAILED, "reason=disabled")], "password", "refused:account_disabled"),
        (
            [event(Event.SIGN_IN_THROTTLED, "reason=throttled")],
            "password",
            "refused:too_many_attempts",
        ),
        ([event(Event.DEVICE_USER_CODE_REFUSED, "unknown")], "device", "refused:invalid_user_code"),
    ]
    for events, method, outcome in cases:
        assert sign_in_outcomes(events) == [(method, outcome)], events


def test_what_is_not_a_sign_in() -> None:
    assert sign_in_outcomes([]) == []
    assert (
        sign_in_outcomes(
            [
                event(Event.SESSION_STARTED, "method=reauthentication kind=browser session=s"),
                event(Event.SESSION_STARTED, "method=password_change kind=browser session=s"),
                event(Event.SESSION_ENDED, "session=s"),
                event(Event.AMAZON_LINKED, "method=attach ended_sessions=0"),
            ]
        )
        == []
    )


def test_facts_reads_key_value_words() -> None:
    assert facts("method=amazon kind=device session=s_1 stray") == {
        "method": "amazon",
        "kind": "device",
        "session": "s_1",
    }
    assert facts(None) == {}
