"""Geography (departments, communes) and volunteers.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_data",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_reference_data"),
    )
    op.create_table(
        "departments",
        sa.Column("code", sa.String(3), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_departments"),
    )
    op.create_table(
        "communes",
        sa.Column("code", sa.String(5), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("department_code", sa.String(3), nullable=False),
        sa.Column("postal_codes", sa.ARRAY(sa.String(5)), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_code"], ["departments.code"], name="fk_communes_department_code_departments"
        ),
        sa.PrimaryKeyConstraint("code", name="pk_communes"),
    )
    op.create_index("ix_communes_department_code", "communes", ["department_code"])
    op.create_table(
        "volunteers",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("receipt", sa.String(32), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_normalized", sa.String(254), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(16), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("postal_code", sa.String(5), nullable=False),
        sa.Column("commune_code", sa.String(5), nullable=False),
        sa.Column("domains", sa.ARRAY(sa.String(40)), nullable=False),
        sa.Column("availability", sa.String(20), nullable=False),
        sa.Column("skills", sa.ARRAY(sa.String(80)), nullable=False),
        sa.Column("emergency_slug", sa.String(64), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["commune_code"], ["communes.code"], name="fk_volunteers_commune_code_communes"),
        sa.PrimaryKeyConstraint("id", name="pk_volunteers"),
        sa.UniqueConstraint("receipt", name="uq_volunteers_receipt"),
        sa.UniqueConstraint("email_normalized", name="uq_volunteers_email_normalized"),
    )
    op.create_index("ix_volunteers_commune_code", "volunteers", ["commune_code"])
    op.create_index("ix_volunteers_emergency_slug", "volunteers", ["emergency_slug"])


def downgrade() -> None:
    op.drop_table("volunteers")
    op.drop_table("communes")
    op.drop_table("departments")
    op.drop_table("reference_data")
