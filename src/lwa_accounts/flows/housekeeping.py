"""Housekeeping: forget sessions, pending flows and device codes long dead.

Rows are kept for a grace period after they expire or are revoked, so a late request still
gets "expired" (410) rather than "unknown", and support can still look at them. The audit
log is never pruned here: it is the record of what happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lwa_accounts.interfaces import Stores

# The keys of purge()'s counts, in the order rows are deleted.
KINDS = ("sessions", "devices", "pending_flows")


async def purge(stores: Stores, now: datetime, grace: timedelta, limit: int) -> dict[str, int]:
    """One batch: delete at most ``limit`` rows of each kind that expired (or were revoked)
    before ``now - grace``. Returns how many of each were deleted. The caller commits."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    before = now - grace
    # Device grants before flows: a hand-off grant points at its flow.
    return {
        "sessions": await stores.sessions.purge_expired(before, limit),
        "devices": await stores.devices.purge_expired(before, limit),
        "pending_flows": await stores.pending_flows.purge_expired(before, limit),
    }
