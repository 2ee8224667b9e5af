"""The SNU youth space: cohorts, their departments' choice deadlines, young people, invitations, guardians' consents.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "cohorts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("stay_start", sa.Date(), nullable=False),
        sa.Column("stay_end", sa.Date(), nullable=False),
        sa.Column("missions_start", sa.Date(), nullable=False),
        sa.Column("missions_end", sa.Date(), nullable=False),
        sa.Column("open_for_signup", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("stay_start <= stay_end", name="ck_cohorts_stay_dates"),
        sa.CheckConstraint("missions_start <= missions_end", name="ck_cohorts_mission_dates"),
        sa.PrimaryKeyConstraint("id", name="pk_cohorts"),
        sa.UniqueConstraint("name", name="uq_cohorts_name"),
    )
    op.create_table(
        "cohort_department_deadlines",
        sa.Column("cohort_id", sa.BigInteger(), nullable=False),
        sa.Column("department_code", sa.String(3), nullable=False),
        sa.Column("choose_by", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["cohort_id"], ["cohorts.id"], name="fk_cohort_department_deadlines_cohort_id_cohorts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["department_code"], ["departments.code"],
                                name="fk_cohort_department_deadlines_department_code_departments"),
        sa.PrimaryKeyConstraint("cohort_id", "department_code", name="pk_cohort_department_deadlines"),
    )
    op.create_table(
        "young_people",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("cohort_id", sa.BigInteger(), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("department_code", sa.String(3), nullable=False),
        sa.Column("postal_code", sa.String(5), nullable=False),
        sa.Column("commune_code", sa.String(5), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("status IN ('awaiting_consent', 'consent_refused', 'ready')", name="ck_young_people_status"),
        sa.CheckConstraint("source IN ('invitation', 'signup')", name="ck_young_people_source"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_young_people_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cohort_id"], ["cohorts.id"], name="fk_young_people_cohort_id_cohorts"),
        sa.ForeignKeyConstraint(["department_code"], ["departments.code"],
                                name="fk_young_people_department_code_departments"),
        sa.ForeignKeyConstraint(["commune_code"], ["communes.code"], name="fk_young_people_commune_code_communes"),
        sa.PrimaryKeyConstraint("id", name="pk_young_people"),
        sa.UniqueConstraint("user_id", name="uq_young_people_user_id"),
    )
    op.create_index("ix_young_people_cohort_id", "young_people", ["cohort_id"])
    op.create_index("ix_young_people_department_code", "young_people", ["department_code"])
    op.create_table(
        "youth_invitations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("cohort_id", sa.BigInteger(), nullable=False),
        sa.Column("department_code", sa.String(3), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_normalized", sa.String(254), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("invited_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["cohort_id"], ["cohorts.id"], name="fk_youth_invitations_cohort_id_cohorts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["department_code"], ["departments.code"],
                                name="fk_youth_invitations_department_code_departments"),
        sa.ForeignKeyConstraint(["invited_by"], ["users.id"], name="fk_youth_invitations_invited_by_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_youth_invitations"),
    )
    op.create_index("ix_youth_invitations_cohort_id", "youth_invitations", ["cohort_id"])
    op.create_index("ix_youth_invitations_email_normalized", "youth_invitations", ["email_normalized"])
    op.create_table(
        "guardian_consents",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("young_person_id", sa.BigInteger(), nullable=False),
        sa.Column("guardian_name", sa.String(200), nullable=False),
        sa.Column("guardian_email", sa.String(254), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(8), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_name", sa.String(200), nullable=True),
        sa.CheckConstraint("decision IN ('given', 'refused')", name="ck_guardian_consents_decision"),
        sa.ForeignKeyConstraint(["young_person_id"], ["young_people.id"],
                                name="fk_guardian_consents_young_person_id_young_people", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_guardian_consents"),
    )
    op.create_index("ix_guardian_consents_young_person_id", "guardian_consents", ["young_person_id"])


def downgrade() -> None:
    op.drop_table("guardian_consents")
    op.drop_table("youth_invitations")
    op.drop_table("young_people")
    op.drop_table("cohort_department_deadlines")
    op.drop_table("cohorts")
