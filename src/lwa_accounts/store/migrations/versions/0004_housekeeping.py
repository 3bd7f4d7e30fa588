"""Indexes for housekeeping: `lwa-accounts db prune` finds expired and revoked sessions by
them (pending flows, device grants and code pairs already have an ``expires_at`` index).

Revision ID: 0004_housekeeping
Revises: 0003_devices
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_housekeeping"
down_revision: str | None = "0003_devices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sessions_idle_expires_at", "sessions", ["idle_expires_at"])
    op.create_index("ix_sessions_revoked_at", "sessions", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_sessions_revoked_at", table_name="sessions")
    op.drop_index("ix_sessions_idle_expires_at", table_name="sessions")
