"""Dispatch runs, and the link from a proposal to its run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATUSES = "('planning', 'planned', 'failed', 'committing', 'committed', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "dispatch_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("emergency_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), server_default="planning", nullable=False),
        sa.Column("parameters", postgresql.JSONB(), nullable=False),
        sa.Column("planned_missions", postgresql.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("planned_volunteers", postgresql.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("preview", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("counts", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("committed_by", sa.BigInteger(), nullable=True),
        sa.Column("commit_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_dispatch_runs_status")),
        sa.ForeignKeyConstraint(["emergency_id"], ["emergencies.id"],
                                name=op.f("fk_dispatch_runs_emergency_id_emergencies"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_dispatch_runs_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["committed_by"], ["users.id"], name=op.f("fk_dispatch_runs_committed_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["cancelled_by"], ["users.id"], name=op.f("fk_dispatch_runs_cancelled_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_runs")),
    )
    op.create_index(op.f("ix_dispatch_runs_emergency_id"), "dispatch_runs", ["emergency_id"])
    op.add_column("applications", sa.Column("dispatch_run_id", sa.BigInteger(), nullable=True))
    op.add_column("applications", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(op.f("fk_applications_dispatch_run_id_dispatch_runs"), "applications", "dispatch_runs",
                          ["dispatch_run_id"], ["id"], ondelete="SET NULL")
    op.create_index(op.f("ix_applications_dispatch_run_id"), "applications", ["dispatch_run_id"])
    # The expiry job's scan: only proposals still waiting for an answer.
    op.create_index("ix_applications_proposal_expiry", "applications", ["expires_at"],
                    postgresql_where=sa.text("status = 'proposed'"))


def downgrade() -> None:
    op.drop_index("ix_applications_proposal_expiry", table_name="applications")
    op.drop_index(op.f("ix_applications_dispatch_run_id"), table_name="applications")
    op.drop_constraint(op.f("fk_applications_dispatch_run_id_dispatch_runs"), "applications", type_="foreignkey")
    op.drop_column("applications", "expires_at")
    op.drop_column("applications", "dispatch_run_id")
    op.drop_index(op.f("ix_dispatch_runs_emergency_id"), table_name="dispatch_runs")
    op.drop_table("dispatch_runs")
