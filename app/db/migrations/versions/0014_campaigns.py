"""National campaigns, their images and the missions tagged for them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

IMAGE_TYPES = "('image/png', 'image/jpeg', 'image/webp')"
MAX_IMAGE_BYTES = 2 * 1024 * 1024


def upgrade() -> None:
    op.create_table(
        "campaign_images",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("content_type", sa.String(20), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"content_type IN {IMAGE_TYPES}", name="ck_campaign_images_content_type"),
        sa.CheckConstraint(f"size > 0 AND size <= {MAX_IMAGE_BYTES} AND size = octet_length(data)",
                           name="ck_campaign_images_size"),
        sa.CheckConstraint("width > 0 AND height > 0", name="ck_campaign_images_dimensions"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_images"),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("slug", sa.String(60), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("image_id", sa.BigInteger(), nullable=True),
        sa.Column("image_alt", sa.String(250), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("domains", postgresql.ARRAY(sa.String(40)), server_default="{}", nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("slug ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'", name="ck_campaigns_slug"),
        sa.CheckConstraint("ends_on >= starts_on", name="ck_campaigns_window"),
        sa.CheckConstraint("image_id IS NULL OR image_alt IS NOT NULL", name="ck_campaigns_image_alt"),
        sa.ForeignKeyConstraint(["image_id"], ["campaign_images.id"], name="fk_campaigns_image_id_campaign_images",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name="fk_campaigns_created_by_id_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("slug", name="uq_campaigns_slug"),
    )
    op.create_index("ix_campaigns_ends_on", "campaigns", ["ends_on"])
    op.create_table(
        "campaign_missions",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("mission_id", sa.BigInteger(), nullable=False),
        sa.Column("tagged_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_campaign_missions_campaign_id_campaigns",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["mission_id"], ["missions.id"], name="fk_campaign_missions_mission_id_missions",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "mission_id", name="pk_campaign_missions"),
    )
    op.create_index("ix_campaign_missions_mission_id", "campaign_missions", ["mission_id"])


def downgrade() -> None:
    op.drop_table("campaign_missions")
    op.drop_table("campaigns")
    op.drop_table("campaign_images")
