"""Missions and their addresses.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATUSES = "('draft', 'awaiting_validation', 'published', 'full', 'finished', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "missions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("organisation_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(150), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("domain", sa.String(40), nullable=False),
        sa.Column("activities", postgresql.ARRAY(sa.String(80)), nullable=False),
        sa.Column("remote", sa.Boolean(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("schedule", sa.String(300), nullable=True),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.Column("open_to_minors", sa.Boolean(), nullable=False),
        sa.Column("prerequisites", sa.Text(), nullable=True),
        sa.Column("priority", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("emergency_slug", sa.String(80), nullable=True),
        sa.Column("status", sa.String(32), server_default="draft", nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_missions_status"),
        sa.CheckConstraint("places > 0", name="ck_missions_places"),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_missions_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_missions"),
    )
    op.create_index("ix_missions_organisation_id", "missions", ["organisation_id"])
    op.create_index("ix_missions_status", "missions", ["status"])
    op.create_table(
        "mission_addresses",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("mission_id", sa.BigInteger(), nullable=False),
        sa.Column("address_line", sa.String(200), nullable=False),
        sa.Column("postal_code", sa.String(5), nullable=False),
        sa.Column("commune_code", sa.String(5), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mission_id"], ["missions.id"], name="fk_mission_addresses_mission_id_missions", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["commune_code"], ["communes.code"], name="fk_mission_addresses_commune_code_communes"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mission_addresses"),
    )
    op.create_index("ix_mission_addresses_mission_id", "mission_addresses", ["mission_id"])
    # The search's bounding-box prefilter.
    op.create_index("ix_mission_addresses_latitude_longitude", "mission_addresses", ["latitude", "longitude"])


def downgrade() -> None:
    op.drop_table("mission_addresses")
    op.drop_table("missions")
