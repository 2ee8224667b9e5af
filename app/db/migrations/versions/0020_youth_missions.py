"""The SNU missions of general interest: offers on missions, young people's ranked choices, allocation runs,
placements, agreements with each party's signature, and the hours tutors declare.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "youth_allocations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("cohort_id", sa.BigInteger(), nullable=False),
        sa.Column("department_code", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("plan", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("confirmed_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("solved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'preview', 'confirmed', 'discarded', 'failed')",
            name=op.f("ck_youth_allocations_status"),
        ),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name=op.f("fk_youth_allocations_cohort_id_cohorts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by"], ["users.id"], name=op.f("fk_youth_allocations_confirmed_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["department_code"], ["departments.code"], name=op.f("fk_youth_allocations_department_code_departments")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_youth_allocations_requested_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youth_allocations")),
    )
    op.create_index(op.f("ix_youth_allocations_cohort_id"), "youth_allocations", ["cohort_id"], unique=False)
    op.create_index(
        "uq_youth_allocations_open",
        "youth_allocations",
        ["cohort_id", "department_code"],
        unique=True,
        postgresql_where=sa.text("status IN ('running', 'preview')"),
    )
    op.create_table(
        "youth_offers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mission_id", sa.BigInteger(), nullable=False),
        sa.Column("department_code", sa.String(length=3), nullable=False),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("tutor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("tutor_name", sa.String(length=200), nullable=True),
        sa.Column("tutor_email", sa.String(length=254), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), server_default="awaiting_validation", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("source IN ('organisation', 'partner')", name=op.f("ck_youth_offers_source")),
        sa.CheckConstraint(
            "status IN ('awaiting_validation', 'validated', 'refused', 'withdrawn')",
            name=op.f("ck_youth_offers_status"),
        ),
        sa.CheckConstraint("hours BETWEEN 1 AND 2000", name=op.f("ck_youth_offers_hours")),
        sa.CheckConstraint("places BETWEEN 1 AND 500", name=op.f("ck_youth_offers_places")),
        sa.CheckConstraint("start_date <= end_date", name=op.f("ck_youth_offers_dates")),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_youth_offers_decided_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["department_code"], ["departments.code"], name=op.f("fk_youth_offers_department_code_departments")
        ),
        sa.ForeignKeyConstraint(
            ["mission_id"], ["missions.id"], name=op.f("fk_youth_offers_mission_id_missions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tutor_user_id"], ["users.id"], name=op.f("fk_youth_offers_tutor_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youth_offers")),
        sa.UniqueConstraint("mission_id", name=op.f("uq_youth_offers_mission_id")),
    )
    op.create_index("ix_youth_offers_department_status", "youth_offers", ["department_code", "status"], unique=False)
    op.create_table(
        "youth_choices",
        sa.Column("young_person_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("offer_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("rank BETWEEN 1 AND 5", name=op.f("ck_youth_choices_rank")),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["youth_offers.id"], name=op.f("fk_youth_choices_offer_id_youth_offers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_people.id"],
            name=op.f("fk_youth_choices_young_person_id_young_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("young_person_id", "rank", name=op.f("pk_youth_choices")),
        sa.UniqueConstraint("young_person_id", "offer_id", name="uq_youth_choices_young_person_id_offer_id"),
    )
    op.create_index(op.f("ix_youth_choices_offer_id"), "youth_choices", ["offer_id"], unique=False)
    op.create_table(
        "youth_placements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("young_person_id", sa.BigInteger(), nullable=False),
        sa.Column("offer_id", sa.BigInteger(), nullable=False),
        sa.Column("allocation_id", sa.BigInteger(), nullable=True),
        sa.Column("rank", sa.SmallInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="placed", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('placed', 'completed', 'cancelled')", name=op.f("ck_youth_placements_status")),
        sa.CheckConstraint("rank IS NULL OR rank BETWEEN 1 AND 5", name=op.f("ck_youth_placements_rank")),
        sa.ForeignKeyConstraint(
            ["allocation_id"],
            ["youth_allocations.id"],
            name=op.f("fk_youth_placements_allocation_id_youth_allocations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["youth_offers.id"],
            name=op.f("fk_youth_placements_offer_id_youth_offers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_people.id"],
            name=op.f("fk_youth_placements_young_person_id_young_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youth_placements")),
    )
    op.create_index(op.f("ix_youth_placements_offer_id"), "youth_placements", ["offer_id"], unique=False)
    op.create_index(op.f("ix_youth_placements_young_person_id"), "youth_placements", ["young_person_id"], unique=False)
    op.create_index(
        "uq_youth_placements_active",
        "youth_placements",
        ["young_person_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'cancelled'"),
    )
    op.create_table(
        "youth_agreements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("placement_id", sa.BigInteger(), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["youth_placements.id"],
            name=op.f("fk_youth_agreements_placement_id_youth_placements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youth_agreements")),
        sa.UniqueConstraint("placement_id", name=op.f("uq_youth_agreements_placement_id")),
    )
    op.create_table(
        "youth_hours",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("placement_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hours", sa.Numeric(precision=4, scale=2), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("hours > 0 AND hours <= 12", name=op.f("ck_youth_hours_hours")),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["youth_placements.id"],
            name=op.f("fk_youth_hours_placement_id_youth_placements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youth_hours")),
        sa.UniqueConstraint("placement_id", "day", name="uq_youth_hours_placement_id_day"),
    )
    op.create_table(
        "youth_agreement_signatures",
        sa.Column("agreement_id", sa.BigInteger(), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_name", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "party IN ('young', 'guardian', 'organisation', 'referent')",
            name=op.f("ck_youth_agreement_signatures_party"),
        ),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["youth_agreements.id"],
            name=op.f("fk_youth_agreement_signatures_agreement_id_youth_agreements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agreement_id", "party", name=op.f("pk_youth_agreement_signatures")),
    )


def downgrade() -> None:
    op.drop_table("youth_agreement_signatures")
    op.drop_table("youth_hours")
    op.drop_table("youth_agreements")
    op.drop_index(
        "uq_youth_placements_active", table_name="youth_placements", postgresql_where=sa.text("status <> 'cancelled'")
    )
    op.drop_index(op.f("ix_youth_placements_young_person_id"), table_name="youth_placements")
    op.drop_index(op.f("ix_youth_placements_offer_id"), table_name="youth_placements")
    op.drop_table("youth_placements")
    op.drop_index(op.f("ix_youth_choices_offer_id"), table_name="youth_choices")
    op.drop_table("youth_choices")
    op.drop_index("ix_youth_offers_department_status", table_name="youth_offers")
    op.drop_table("youth_offers")
    op.drop_index(
        "uq_youth_allocations_open",
        table_name="youth_allocations",
        postgresql_where=sa.text("status IN ('running', 'preview')"),
    )
    op.drop_index(op.f("ix_youth_allocations_cohort_id"), table_name="youth_allocations")
    op.drop_table("youth_allocations")
