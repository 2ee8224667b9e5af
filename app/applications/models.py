from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.applications.statuses import ApplicationStatus
from app.db.base import Base
from app.missions import models as mission_models  # noqa: F401  (maps `missions`)
from app.volunteers import models as volunteer_models  # noqa: F401  (maps `volunteers`)
from surge.dispatch import models as dispatch_models  # noqa: F401  (maps `dispatch_runs`)

STATUSES = tuple(status.value for status in ApplicationStatus)


class Application(Base):
    """A volunteer on a mission: one row per (mission, volunteer), the natural key that makes drains idempotent.

    `version` is the number Redis gave the state change this row holds: a write with an older version is ignored,
    so queued changes may be applied twice, or out of order, and the row still ends at the latest state."""

    __tablename__ = "applications"
    __table_args__ = (
        UniqueConstraint("mission_id", "volunteer_id"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        Index("ix_applications_unreminded", "applied_at",
              postgresql_where=text("status = 'pending' AND reminded_at IS NULL")),  # the reminders' question
        Index("ix_applications_unannounced", "mission_id",  # the new applications' e-mail question
              postgresql_where=text("status IN ('pending', 'waitlisted') AND announced_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("missions.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)  # the volunteer's, when applying
    reason: Mapped[str | None] = mapped_column(Text)  # the organisation's, when declining
    # A proposal's run, and when it lapses if the volunteer has not answered (both kept once answered, for audit).
    dispatch_run_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_runs.id", ondelete="SET NULL"),
                                                        index=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the organisation was reminded that this pending application waits for its answer (once).
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the organisation's managers were told of this application (first e-mail or digest; once).
    announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
