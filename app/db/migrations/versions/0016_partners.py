"""Partner platforms: API keys, diffusion rules, feed imports, partner missions and organisations, clicks and
applications exchanged.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _now() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.String(150), nullable=False),
        sa.Column("contact_email", sa.String(254), nullable=True),
        sa.Column("website", sa.String(300), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), server_default="1200", nullable=False),
        sa.Column("diffusion_domains", sa.ARRAY(sa.String(40)), server_default="{}", nullable=False),
        sa.Column("diffusion_departments", sa.ARRAY(sa.String(3)), server_default="{}", nullable=False),
        sa.Column("diffusion_organisation_ids", sa.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("diffuses_partner_missions", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("feed_url", sa.String(500), nullable=True),
        sa.Column("feed_username", sa.String(200), nullable=True),
        sa.Column("feed_password", sa.String(200), nullable=True),
        sa.Column("feed_interval_minutes", sa.Integer(), server_default="360", nullable=False),
        _now(),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_partners"),
    )
    op.create_table(
        "partner_api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("label", sa.String(100), nullable=True),
        _now(),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_partner_api_keys_partner_id_partners",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_partner_api_keys"),
        sa.UniqueConstraint("digest", name="uq_partner_api_keys_digest"),
    )
    op.create_index("ix_partner_api_keys_partner_id", "partner_api_keys", ["partner_id"])
    op.create_table(
        "partner_imports",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), server_default="running", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *[sa.Column(name, sa.Integer(), server_default="0", nullable=False)
          for name in ("received", "created", "updated", "unchanged", "deleted", "refused")],
        sa.Column("refusals", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="ck_partner_imports_status"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_partner_imports_partner_id_partners",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_partner_imports"),
    )
    op.create_index("ix_partner_imports_partner_id", "partner_imports", ["partner_id"])

    for table in ("missions", "organisations"):
        op.add_column(table, sa.Column("partner_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(f"fk_{table}_partner_id_partners", table, "partners", ["partner_id"], ["id"],
                              ondelete="RESTRICT")
    op.add_column("missions", sa.Column("client_id", sa.String(200), nullable=True))
    op.add_column("missions", sa.Column("application_url", sa.String(1000), nullable=True))
    op.add_column("missions", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("missions", sa.Column("import_digest", sa.String(32), nullable=True))
    op.create_index("uq_missions_partner_id_client_id", "missions", ["partner_id", "client_id"], unique=True)
    op.add_column("organisations", sa.Column("partner_key", sa.String(120), nullable=True))
    op.create_index("uq_organisations_partner_id_partner_key", "organisations", ["partner_id", "partner_key"],
                    unique=True)
    # The radius search's prefilter: a box of points the GiST index answers, whatever the latitude band.
    op.execute("CREATE INDEX ix_mission_addresses_point ON mission_addresses USING gist (point(longitude, latitude))")

    op.create_table(
        "partner_clicks",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("mission_id", sa.BigInteger(), nullable=True),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        _now(),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_partner_clicks_direction"),
        sa.ForeignKeyConstraint(["mission_id"], ["missions.id"], name="fk_partner_clicks_mission_id_missions",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_partner_clicks_partner_id_partners",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_partner_clicks"),
        sa.UniqueConstraint("token", name="uq_partner_clicks_token"),
    )
    op.create_index("ix_partner_clicks_mission_id", "partner_clicks", ["mission_id"])
    op.create_index("ix_partner_clicks_created_at", "partner_clicks", ["created_at"])
    op.create_table(
        "partner_applications",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("click_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("mission_id", sa.BigInteger(), nullable=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        _now(),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_partner_applications_direction"),
        sa.ForeignKeyConstraint(["click_id"], ["partner_clicks.id"],
                                name="fk_partner_applications_click_id_partner_clicks", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_partner_applications_partner_id_partners",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["mission_id"], ["missions.id"], name="fk_partner_applications_mission_id_missions",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_partner_applications"),
        sa.UniqueConstraint("click_id", name="uq_partner_applications_click_id"),
    )
    op.create_index("ix_partner_applications_partner_id", "partner_applications", ["partner_id"])
    op.create_index("ix_partner_applications_created_at", "partner_applications", ["created_at"])


def downgrade() -> None:
    op.drop_table("partner_applications")
    op.drop_table("partner_clicks")
    op.execute("DROP INDEX ix_mission_addresses_point")
    op.drop_index("uq_organisations_partner_id_partner_key", "organisations")
    op.drop_column("organisations", "partner_key")
    op.drop_index("uq_missions_partner_id_client_id", "missions")
    for column in ("import_digest", "deleted_at", "application_url", "client_id"):
        op.drop_column("missions", column)
    for table in ("missions", "organisations"):
        op.drop_constraint(f"fk_{table}_partner_id_partners", table, type_="foreignkey")
        op.drop_column(table, "partner_id")
    op.drop_table("partner_imports")
    op.drop_table("partner_api_keys")
    op.drop_table("partners")
