"""Accounts: users and coordinator scopes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_normalized", sa.String(254), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email_normalized", name="uq_users_email_normalized"),
    )
    op.create_table(
        "coordinator_scopes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("department_code", sa.String(3), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_coordinator_scopes_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["department_code"], ["departments.code"], name="fk_coordinator_scopes_department_code_departments"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_coordinator_scopes"),
        sa.UniqueConstraint(
            "user_id", "department_code", name="uq_coordinator_scopes_user_id", postgresql_nulls_not_distinct=True
        ),
    )
    op.create_index("ix_coordinator_scopes_user_id", "coordinator_scopes", ["user_id"])


def downgrade() -> None:
    op.drop_table("coordinator_scopes")
    op.drop_table("users")
