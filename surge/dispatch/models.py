from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import models as account_models  # noqa: F401  (maps `users`)
from app.db.base import Base
from surge.emergencies import models as emergency_models  # noqa: F401  (maps `emergencies`)

# planning → planned (or failed) → committing → committed; cancelled from any of them but failed.
STATUSES = ("planning", "planned", "failed", "committing", "committed", "cancelled")


class DispatchRun(Base):
    """One dispatch of an emergency, kept as its audit: who asked, when, with which parameters, the plan the engine
    returned (as two parallel arrays, mission and volunteer of each assignment), what the coordinator saw
    (`preview`) and what the commit did (`counts`). Proposals point back to it by `applications.dispatch_run_id`."""

    __tablename__ = "dispatch_runs"
    __table_args__ = (CheckConstraint(f"status IN {STATUSES}", name="status"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    emergency_id: Mapped[int] = mapped_column(ForeignKey("emergencies.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), server_default="planning")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    planned_missions: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    planned_volunteers: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    preview: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the proposals', set at commit
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    planned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    committed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    commit_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    committed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
