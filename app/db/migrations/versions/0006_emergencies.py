"""Emergencies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emergencies",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("title", sa.String(150), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("needs", sa.Text(), nullable=False),
        sa.Column("departments", postgresql.ARRAY(sa.String(3)), nullable=False),
        sa.Column("priority_domains", postgresql.ARRAY(sa.String(40)), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), server_default="draft", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("live_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'live', 'closed')", name=op.f("ck_emergencies_status")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_emergencies_created_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergencies")),
        sa.UniqueConstraint("slug", name=op.f("uq_emergencies_slug")),
    )
    op.create_index(op.f("ix_emergencies_status"), "emergencies", ["status"])
    op.create_index(op.f("ix_missions_emergency_slug"), "missions", ["emergency_slug"])


def downgrade() -> None:
    op.drop_index(op.f("ix_missions_emergency_slug"), table_name="missions")
    op.drop_index(op.f("ix_emergencies_status"), table_name="emergencies")
    op.drop_table("emergencies")
