"""The journal of runtime switch changes (maintenance, organisations read-only, paused jobs).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "switch_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("change_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("switch", sa.String(40), nullable=False),
        sa.Column("old_value", sa.Boolean(), nullable=False),
        sa.Column("new_value", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.CheckConstraint("switch IN ('maintenance', 'organisations_read_only', 'pause_jobs')",
                           name="ck_switch_changes_switch"),
        sa.CheckConstraint("actor IN ('admin', 'commande')", name="ck_switch_changes_actor"),
        sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], name="fk_switch_changes_actor_user_id_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_switch_changes"),
        sa.UniqueConstraint("change_id", name="uq_switch_changes_change_id"),
    )
    op.create_index("ix_switch_changes_at", "switch_changes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_switch_changes_at", table_name="switch_changes")
    op.drop_table("switch_changes")
