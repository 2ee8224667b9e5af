"""Applications, and the volunteers' e-mail preferences.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATUSES = "('pending', 'waitlisted', 'accepted', 'declined', 'cancelled', 'done', 'proposed')"


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("mission_id", sa.BigInteger(), nullable=False),
        sa.Column("volunteer_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_applications_status")),
        sa.ForeignKeyConstraint(["mission_id"], ["missions.id"], name=op.f("fk_applications_mission_id_missions"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["volunteer_id"], ["volunteers.id"],
                                name=op.f("fk_applications_volunteer_id_volunteers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("mission_id", "volunteer_id", name=op.f("uq_applications_mission_id")),
    )
    op.create_index(op.f("ix_applications_volunteer_id"), "applications", ["volunteer_id"])
    op.add_column("volunteers", sa.Column("mail_applications", sa.Boolean(), server_default="true", nullable=False))
    op.add_column("volunteers", sa.Column("mail_emergencies", sa.Boolean(), server_default="true", nullable=False))


def downgrade() -> None:
    op.drop_column("volunteers", "mail_emergencies")
    op.drop_column("volunteers", "mail_applications")
    op.drop_index(op.f("ix_applications_volunteer_id"), table_name="applications")
    op.drop_table("applications")
