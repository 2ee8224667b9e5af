"""Versioned legal texts (legal notice, accessibility, personal data, terms) and the version each person accepted.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

KINDS = ("mentions", "accessibility", "privacy", "terms")


def upgrade() -> None:
    op.create_table(
        "legal_texts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("major", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        # No foreign key: a published text outlives its publisher's account (and a TRUNCATE of users).
        sa.Column("published_by", sa.BigInteger()),
        sa.UniqueConstraint("kind", "version", name="uq_legal_texts_kind"),
        sa.CheckConstraint(f"kind IN {KINDS}", name="ck_legal_texts_kind"),
        sa.CheckConstraint("version >= 1", name="ck_legal_texts_version"),
    )
    op.add_column("volunteers", sa.Column("terms_version", sa.Integer()))
    op.add_column("organisations", sa.Column("terms_version", sa.Integer()))
    op.add_column("users", sa.Column("terms_version", sa.Integer()))
    op.add_column("users", sa.Column("terms_accepted_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("users", "terms_accepted_at")
    op.drop_column("users", "terms_version")
    op.drop_column("organisations", "terms_version")
    op.drop_column("volunteers", "terms_version")
    op.drop_table("legal_texts")
