"""Device grants (our RFC 8628 shaped sign-in and phone hand-offs) and server-assisted
Amazon code-based linking.

Revision ID: 0003_devices
Revises: 0002_amazon
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_devices"
down_revision: str | None = "0002_amazon"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_grants",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("device_code_hash", sa.String(64), nullable=True),
        sa.Column("user_code_hash", sa.String(64), nullable=False),
        sa.Column("flow_id_hash", sa.String(64), nullable=True),
        sa.Column("sealed_flow_id", sa.String(256), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("device_name", sa.String(100), nullable=True),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('device', 'handoff')", name="ck_device_grants_purpose"),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'denied', 'consumed')",
            name="ck_device_grants_status",
        ),
        sa.ForeignKeyConstraint(
            ["flow_id_hash"],
            ["pending_flows.id_hash"],
            name="fk_device_grants_flow_id_hash_pending_flows",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_device_grants_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_device_grants"),
    )
    op.create_index(
        "ix_device_grants_device_code_hash", "device_grants", ["device_code_hash"], unique=True
    )
    op.create_index(
        "ix_device_grants_user_code_hash", "device_grants", ["user_code_hash"], unique=True
    )
    op.create_index("ix_device_grants_expires_at", "device_grants", ["expires_at"])
    op.create_table(
        "amazon_device_authorizations",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("user_code", sa.String(64), nullable=False),
        sa.Column("device_code", sa.String(512), nullable=True),
        sa.Column("verification_uri", sa.String(512), nullable=False),
        sa.Column("device_name", sa.String(100), nullable=True),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("amazon_interval", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("amazon_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'expired', 'denied')",
            name="ck_amazon_device_authorizations_status",
        ),
        sa.PrimaryKeyConstraint("id_hash", name="pk_amazon_device_authorizations"),
    )
    op.create_index(
        "ix_amazon_device_authorizations_expires_at",
        "amazon_device_authorizations",
        ["expires_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_amazon_device_authorizations_expires_at", table_name="amazon_device_authorizations"
    )
    op.drop_table("amazon_device_authorizations")
    op.drop_index("ix_device_grants_expires_at", table_name="device_grants")
    op.drop_index("ix_device_grants_user_code_hash", table_name="device_grants")
    op.drop_index("ix_device_grants_device_code_hash", table_name="device_grants")
    op.drop_table("device_grants")
