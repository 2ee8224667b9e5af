"""What a partner reported after a click: an application ("apply") or only an account ("account").

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("partner_applications",
                  sa.Column("activity_type", sa.String(8), server_default="apply", nullable=False))
    op.create_check_constraint(op.f("ck_partner_applications_activity_type"), "partner_applications",
                               "activity_type IN ('apply', 'account')")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_partner_applications_activity_type"), "partner_applications", type_="check")
    op.drop_column("partner_applications", "activity_type")
