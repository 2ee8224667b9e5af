"""City pages written by local authorities and validated by referents.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "city_pages",
        sa.Column("commune_code", sa.String(5), nullable=False),
        sa.Column("organisation_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("mission_ids", sa.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("validated_by", sa.BigInteger(), nullable=True),
        sa.Column("proposed_text", sa.Text(), nullable=False),
        sa.Column("proposed_mission_ids", sa.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"),
                  nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("proposed_by", sa.BigInteger(), nullable=True),
        sa.Column("review", sa.String(24), server_default="awaiting_validation", nullable=False),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("review IN ('awaiting_validation', 'refused', 'validated')", name="ck_city_pages_review"),
        sa.ForeignKeyConstraint(["commune_code"], ["communes.code"], name="fk_city_pages_commune_code_communes"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_city_pages_organisation_id_organisations", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["validated_by"], ["users.id"], name="fk_city_pages_validated_by_users",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["proposed_by"], ["users.id"], name="fk_city_pages_proposed_by_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("commune_code", name="pk_city_pages"),
    )
    op.create_index("ix_city_pages_organisation_id", "city_pages", ["organisation_id"])
    op.create_index("ix_city_pages_review", "city_pages", ["review"])


def downgrade() -> None:
    op.drop_index("ix_city_pages_review", table_name="city_pages")
    op.drop_index("ix_city_pages_organisation_id", table_name="city_pages")
    op.drop_table("city_pages")
