"""Organisations and their managers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TYPES = "('association', 'collectivite', 'organisation_publique', 'organisation_privee')"
STATUSES = "('draft', 'awaiting_validation', 'validated', 'refused', 'suspended')"


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.String(150), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("rna", sa.String(10), nullable=True),
        sa.Column("siret", sa.String(14), nullable=True),
        sa.Column("address_line", sa.String(200), nullable=False),
        sa.Column("postal_code", sa.String(5), nullable=False),
        sa.Column("commune_code", sa.String(5), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("donation_url", sa.String(500), nullable=True),
        sa.Column("status", sa.String(32), server_default="draft", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"type IN {TYPES}", name="ck_organisations_type"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_organisations_status"),
        sa.ForeignKeyConstraint(["commune_code"], ["communes.code"], name="fk_organisations_commune_code_communes"),
        sa.PrimaryKeyConstraint("id", name="pk_organisations"),
    )
    op.create_index("ix_organisations_commune_code", "organisations", ["commune_code"])
    op.create_index("ix_organisations_status", "organisations", ["status"])
    op.create_table(
        "organisation_managers",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("organisation_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"],
            name="fk_organisation_managers_organisation_id_organisations", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_organisation_managers_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_organisation_managers"),
        sa.UniqueConstraint("organisation_id", "user_id", name="uq_organisation_managers_organisation_id"),
    )
    op.create_index("ix_organisation_managers_user_id", "organisation_managers", ["user_id"])


def downgrade() -> None:
    op.drop_table("organisation_managers")
    op.drop_table("organisations")
