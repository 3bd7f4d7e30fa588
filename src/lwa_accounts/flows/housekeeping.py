"""Housekeeping: forget sessions, pending flows and device codes long dead, and mail long
sent or failed.

Rows are kept for a grace period after they expire or are revoked, so a late request still
gets "expired" (410) rather than "unknown", and support can still look at them. Outbox
rows (their bodies emptied once sent or failed) are kept for their own retentions
(``LWA_ACCOUNTS_MAIL_SENT_RETENTION_DAYS``, ``..._FAILED_RETENTION_DAYS``); mail still to
send is never deleted. The audit log is never pruned here: it is the record of what
happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lwa_accounts.interfaces import Stores

# The keys of purge()'s counts, in the order rows are deleted.
KINDS = ("sessions", "devices", "pending_flows", "mail")
MAIL_SENT_RETENTION = timedelta(days=7)
MAIL_FAILED_RETENTION = timedelta(days=30)


async def purge(
    stores: Stores,
    now: datetime,
    grace: timedelta,
    limit: int,
    *,
    mail_sent_retention: timedelta = MAIL_SENT_RETENTION,
    mail_failed_retention: timedelta = MAIL_FAILED_RETENTION,
) -> dict[str, int]:
    """One batch: delete at most ``limit`` rows of each kind that expired (or were revoked)
    before ``now - grace``, and outbox rows sent or failed longer ago than their
    retention. Returns how many of each were deleted. The caller commits."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if min(grace, mail_sent_retention, mail_failed_retention) < timedelta(0):
        raise ValueError("grace and retentions must not be negative")
    before = now - grace
    # Device grants before flows: a hand-off grant points at its flow.
    return {
        "sessions": await stores.sessions.purge_expired(before, limit),
        "devices": await stores.devices.purge_expired(before, limit),
        "pending_flows": await stores.pending_flows.purge_expired(before, limit),
        "mail": await stores.outbox.purge_settled(
            sent_before=now - mail_sent_retention,
            failed_before=now - mail_failed_retention,
            limit=limit,
        ),
    }
