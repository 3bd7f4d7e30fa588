"""The audit log's vocabulary: every event kind a flow records, in one enum.

The strings are stable (``lwa-accounts audit`` filters on them and operators grep them).
A kind marked *kept* records an attempt rather than a change (a refused Amazon sign-in, a
wrong password, a wrong user code): it must survive even when the refusal rolls the
transaction back, so ``flows.context.Tx`` writes such events again in a short transaction
of their own after a rollback. Every other event is part of what it records and rolls
back with it (an ``amazon.linked`` whose link was undone never happened).

Events never hold a token, a code, a flow handle or a password; ``detail`` carries short
``key=value`` facts (a reason code, a session id, a grant id).
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    # accounts and sessions
    ACCOUNT_REGISTERED = "account.registered"
    SIGN_IN_FAILED = "signin.failed"
    SIGN_IN_THROTTLED = "signin.throttled"
    PASSWORD_CHANGED = "password.changed"  # noqa: S105 - an event name
    PASSWORD_RESET_REQUESTED = "password.reset_requested"  # noqa: S105 - an event name
    PASSWORD_RESET_REFUSED = "password.reset_refused"  # noqa: S105 - a link or code refused
    PASSWORD_RESET = "password.reset"  # noqa: S105 - an event name
    REAUTHENTICATED = "session.reauthenticated"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    SESSION_REVOKED = "session.revoked"
    # e-mail verification and the profile (issue 13); never the address itself
    EMAIL_VERIFICATION_SENT = "email.verification_sent"  # detail reason=registration|change|...
    EMAIL_VERIFICATION_DEFERRED = "email.verification_deferred"  # e-mail budget spent: none sent
    EMAIL_VERIFIED = "email.verified"
    EMAIL_CHANGE_REQUESTED = "email.change_requested"
    EMAIL_CHANGED = "email.changed"  # a verified new address replaced the old one
    EMAIL_RELEASED = "email.released"  # an unverified holder lost it to a verified claim
    PROFILE_UPDATED = "account.profile_updated"  # detail fields=name,postal_code
    # Amazon sign-in
    AMAZON_SIGNED_IN = "amazon.signed_in"
    AMAZON_ACCOUNT_CREATED = "amazon.account_created"
    AMAZON_LINKED = "amazon.linked"
    AMAZON_UNLINKED = "amazon.unlinked"
    AMAZON_FLOW_STARTED = "amazon.flow_started"
    AMAZON_FLOW_SWITCHED = "amazon.flow_switched"  # a link step became "a separate account"
    AMAZON_REFUSED = "amazon.refused"
    AMAZON_SIGNIN_CONFLICT = "amazon.signin_conflict"  # lost a first sign-in race, looked again
    AMAZON_EMAIL_UPDATED = "amazon.email_updated"
    AMAZON_EMAIL_PENDING = "amazon.email_pending"
    AMAZON_HANDOFF_PROVEN = "amazon.handoff_proven"
    AMAZON_LINK_CODE_SENT = "amazon.link_code_sent"  # a link step's code, to the verified address
    AMAZON_DEVICE_AUTHORIZATION_STARTED = "amazon.device_authorization_started"
    # our device grant and /activate
    DEVICE_AUTHORIZATION_STARTED = "device.authorization_started"
    DEVICE_APPROVED = "device.approved"
    DEVICE_DENIED = "device.denied"
    DEVICE_USER_CODE_REFUSED = "device.user_code_refused"
    # "This wasn't me" from a notice by mail (flows/not_me.py)
    NOT_ME = "notice.not_me"  # sessions ended, Amazon unlinked, e-mail proofs voided
    NOT_ME_REFUSED = "notice.not_me_refused"  # an invalid or expired link was posted
    # an operator's command line (`lwa-accounts admin`); detail starts operator=NAME
    ADMIN_UNLINKED_AMAZON = "admin.unlinked_amazon"
    ADMIN_SESSION_REVOKED = "admin.session_revoked"
    ADMIN_SESSIONS_REVOKED = "admin.sessions_revoked"
    ADMIN_ACCOUNT_DISABLED = "admin.account_disabled"
    ADMIN_ACCOUNT_ENABLED = "admin.account_enabled"

    @property
    def kept(self) -> bool:
        """An attempt: written even when the transaction that recorded it rolls back."""
        return self in _KEPT


_KEPT = frozenset(
    {
        Event.SIGN_IN_FAILED,
        Event.SIGN_IN_THROTTLED,
        Event.AMAZON_REFUSED,
        Event.AMAZON_SIGNIN_CONFLICT,
        Event.DEVICE_USER_CODE_REFUSED,
        Event.NOT_ME_REFUSED,
        Event.PASSWORD_RESET_REFUSED,
    }
)
