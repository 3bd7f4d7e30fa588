"""Amazon identities and pending link / registration flows.

Revision ID: 0002_amazon
Revises: 0001_accounts
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_amazon"
down_revision: str | None = "0001_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "amazon_identities",
        sa.Column("amazon_user_id", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("postal_code", sa.String(32), nullable=True),
        sa.Column("pending_email", sa.String(254), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_amazon_identities_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("amazon_user_id", name="pk_amazon_identities"),
        sa.UniqueConstraint("account_id", name="uq_amazon_identities_account_id"),
    )
    op.create_table(
        "pending_flows",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amazon_user_id", sa.String(128), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("postal_code", sa.String(32), nullable=True),
        sa.Column("target_account_id", sa.String(32), nullable=True),
        sa.Column("completed_account_id", sa.String(32), nullable=True),
        sa.Column("attempts_left", sa.Integer(), nullable=False),
        sa.Column("can_register_instead", sa.Boolean(), nullable=False),
        sa.Column("missing", sa.String(128), nullable=False),
        sa.Column("session_kind", sa.String(16), nullable=False),
        sa.Column("device_name", sa.String(100), nullable=True),
        sa.Column("binding_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('link', 'registration')", name="ck_pending_flows_kind"),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'spent')", name="ck_pending_flows_status"
        ),
        sa.CheckConstraint(
            "session_kind IN ('browser', 'device')", name="ck_pending_flows_session_kind"
        ),
        sa.ForeignKeyConstraint(
            ["target_account_id"],
            ["accounts.id"],
            name="fk_pending_flows_target_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["completed_account_id"],
            ["accounts.id"],
            name="fk_pending_flows_completed_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name="pk_pending_flows"),
    )
    op.create_index("ix_pending_flows_expires_at", "pending_flows", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_flows_expires_at", table_name="pending_flows")
    op.drop_table("pending_flows")
    op.drop_table("amazon_identities")
