"""A partner's mission keeps the record it was last sent (API Engagement's names, cleaned of control characters): a
partial `PUT /v2/mission` merges into it, and `/v2` answers with the partner's own values.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("missions", sa.Column("partner_record", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("missions", "partner_record")
