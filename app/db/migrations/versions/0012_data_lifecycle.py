"""Account activity, inactivity warnings, anonymisation and personal-data downloads.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("volunteers", sa.Column("last_activity_at", sa.DateTime(timezone=True), server_default=sa.func.now()))
    # The profile changes before this column are unknown: the sign-up (or its save) is the last one known.
    op.execute("UPDATE volunteers SET last_activity_at = GREATEST(accepted_at, saved_at)")
    for table in ("volunteers", "users"):
        op.add_column(table, sa.Column("inactivity_warned_30_at", sa.DateTime(timezone=True)))
        op.add_column(table, sa.Column("inactivity_warned_7_at", sa.DateTime(timezone=True)))
        op.add_column(table, sa.Column("anonymised_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for table in ("users", "volunteers"):
        op.drop_column(table, "anonymised_at")
        op.drop_column(table, "inactivity_warned_7_at")
        op.drop_column(table, "inactivity_warned_30_at")
    op.drop_column("volunteers", "last_activity_at")
