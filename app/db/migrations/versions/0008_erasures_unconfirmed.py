"""Erasure tombstones, and sign-ups held back until their e-mail is confirmed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("email_digest", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email_digest", name="pk_erasures"),
    )
    op.create_index("ix_erasures_erased_at", "erasures", ["erased_at"])
    op.add_column("volunteers", sa.Column("unconfirmed", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index("ix_volunteers_unconfirmed", "volunteers", ["accepted_at"],
                    postgresql_where=sa.text("unconfirmed"))


def downgrade() -> None:
    op.drop_index("ix_volunteers_unconfirmed", table_name="volunteers")
    op.drop_column("volunteers", "unconfirmed")
    op.drop_index("ix_erasures_erased_at", table_name="erasures")
    op.drop_table("erasures")
