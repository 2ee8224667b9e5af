"""Regions, referents and the audit of roles, manager invitations, mission moderation and templates, and when
organisations were last told about their applications.

Departmental coordinators moderated organisations until now: each gets the referent role for the same departments,
and national coordinators a national referent role, so nobody loses what they could do.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MISSION_STATUSES_BEFORE = "('draft', 'awaiting_validation', 'published', 'full', 'finished', 'cancelled')"
MISSION_STATUSES = "('draft', 'awaiting_validation', 'published', 'full', 'finished', 'cancelled', 'suspended')"


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("code", sa.String(3), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_regions"),
    )
    op.add_column("departments", sa.Column("region_code", sa.String(3), nullable=True))
    op.create_foreign_key("fk_departments_region_code_regions", "departments", "regions", ["region_code"], ["code"])
    op.create_index("ix_departments_region_code", "departments", ["region_code"])
    # The regions arrive with the next load of the dataset (app/geo/service.py's loader version changed).

    op.create_table(
        "referent_scopes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("department_code", sa.String(3), nullable=True),
        sa.Column("region_code", sa.String(3), nullable=True),
        sa.CheckConstraint("department_code IS NULL OR region_code IS NULL", name="ck_referent_scopes_one_level"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_referent_scopes_user_id_users",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["department_code"], ["departments.code"],
                                name="fk_referent_scopes_department_code_departments"),
        sa.ForeignKeyConstraint(["region_code"], ["regions.code"], name="fk_referent_scopes_region_code_regions"),
        sa.PrimaryKeyConstraint("id", name="pk_referent_scopes"),
        sa.UniqueConstraint("user_id", "department_code", "region_code", name="uq_referent_scopes_user_id",
                            postgresql_nulls_not_distinct=True),
    )
    op.create_index("ix_referent_scopes_user_id", "referent_scopes", ["user_id"])
    op.execute(
        "INSERT INTO referent_scopes (user_id, department_code) "
        "SELECT user_id, department_code FROM coordinator_scopes ON CONFLICT DO NOTHING"
    )

    op.create_table(
        "role_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_label", sa.String(254), nullable=False),
        sa.Column("subject_user_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(400), nullable=False),
        sa.CheckConstraint("action IN ('grant', 'revoke')", name="ck_role_changes_action"),
        sa.CheckConstraint("role IN ('admin', 'coordinator', 'referent')", name="ck_role_changes_role"),
        sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], name="fk_role_changes_actor_user_id_users",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subject_user_id"], ["users.id"], name="fk_role_changes_subject_user_id_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_role_changes"),
    )
    op.create_index("ix_role_changes_at", "role_changes", ["at"])
    op.create_index("ix_role_changes_subject_user_id", "role_changes", ["subject_user_id"])
    op.execute(
        "INSERT INTO role_changes (actor_label, subject_user_id, action, role, scope) "
        "SELECT 'migration', user_id, 'grant', 'referent', "
        "COALESCE('departements:' || string_agg(department_code, ',' ORDER BY department_code), 'national') "
        "FROM coordinator_scopes GROUP BY user_id, department_code IS NULL"
    )

    op.add_column("organisations", sa.Column("applications_notified_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "manager_invitations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("organisation_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_normalized", sa.String(254), nullable=False),
        sa.Column("invited_by", sa.BigInteger(), nullable=True),
        sa.Column("token_digest", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_manager_invitations_organisation_id_organisations", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invited_by"], ["users.id"], name="fk_manager_invitations_invited_by_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_manager_invitations"),
        sa.UniqueConstraint("token_digest", name="uq_manager_invitations_token_digest"),
    )
    op.create_index("ix_manager_invitations_organisation_id", "manager_invitations", ["organisation_id"])

    op.create_table(
        "mission_templates",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("title", sa.String(150), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("domain", sa.String(40), nullable=False),
        sa.Column("activities", sa.ARRAY(sa.String(80)), nullable=False),
        sa.Column("open_to_minors", sa.Boolean(), nullable=False),
        sa.Column("prerequisites", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), server_default="draft", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        # Who last changed its text: like its author, they may not validate it.
        sa.Column("edited_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'validated', 'archived')", name="ck_mission_templates_status"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_mission_templates_created_by_users",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["edited_by"], ["users.id"], name="fk_mission_templates_edited_by_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_mission_templates"),
    )
    op.create_index("ix_mission_templates_status", "mission_templates", ["status"])
    op.add_column("missions", sa.Column("status_reason", sa.Text(), nullable=True))
    # A referent may take a published mission offline with a reason (and put it back).
    op.drop_constraint("ck_missions_status", "missions", type_="check")
    op.create_check_constraint("ck_missions_status", "missions", f"status IN {MISSION_STATUSES}")
    op.add_column("missions", sa.Column("template_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("fk_missions_template_id_mission_templates", "missions", "mission_templates",
                          ["template_id"], ["id"], ondelete="SET NULL")
    op.create_index("ix_missions_template_id", "missions", ["template_id"])
    op.create_table(
        "mission_moderations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("mission_id", sa.BigInteger(), nullable=True),
        sa.Column("organisation_id", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        # A suspension is recorded too: it costs the organisation its trust, like a refusal.
        sa.CheckConstraint("decision IN ('validate', 'refuse', 'suspend')", name="ck_mission_moderations_decision"),
        sa.ForeignKeyConstraint(["mission_id"], ["missions.id"], name="fk_mission_moderations_mission_id_missions",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name="fk_mission_moderations_organisation_id_organisations", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name="fk_mission_moderations_decided_by_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_mission_moderations"),
    )
    op.create_index("ix_mission_moderations_mission_id", "mission_moderations", ["mission_id"])
    # The trust question: this organisation's decisions of the last 12 months.
    op.create_index("ix_mission_moderations_organisation", "mission_moderations", ["organisation_id", "decided_at"])
    op.add_column("applications", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    # The reminder's question: pending applications not yet reminded, oldest first.
    op.create_index("ix_applications_unreminded", "applications", ["applied_at"],
                    postgresql_where=sa.text("status = 'pending' AND reminded_at IS NULL"))
    # When the organisation's managers were told of this application (the e-mail at once, or the digest): exact
    # even when a backlog drains an application after a later one was told. Those already there count as told.
    op.add_column("applications", sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE applications SET announced_at = applied_at")
    op.create_index("ix_applications_unannounced", "applications", ["mission_id"],
                    postgresql_where=sa.text("status IN ('pending', 'waitlisted') AND announced_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_applications_unannounced", table_name="applications")
    op.drop_column("applications", "announced_at")
    op.drop_index("ix_applications_unreminded", table_name="applications")
    op.drop_column("applications", "reminded_at")
    op.drop_table("mission_moderations")
    op.drop_index("ix_missions_template_id", table_name="missions")
    op.drop_constraint("fk_missions_template_id_mission_templates", "missions", type_="foreignkey")
    op.drop_column("missions", "template_id")
    op.execute("UPDATE missions SET status = 'draft' WHERE status = 'suspended'")
    op.drop_constraint("ck_missions_status", "missions", type_="check")
    op.create_check_constraint("ck_missions_status", "missions", f"status IN {MISSION_STATUSES_BEFORE}")
    op.drop_column("missions", "status_reason")
    op.drop_table("mission_templates")
    op.drop_table("manager_invitations")
    op.drop_column("organisations", "applications_notified_at")
    op.drop_table("role_changes")
    op.drop_table("referent_scopes")
    op.drop_index("ix_departments_region_code", table_name="departments")
    op.drop_constraint("fk_departments_region_code_regions", "departments", type_="foreignkey")
    op.drop_column("departments", "region_code")
    op.drop_table("regions")
