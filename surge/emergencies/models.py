from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ARRAY, BigInteger, CheckConstraint, Date, DateTime, ForeignKey, Identity, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import models as account_models  # noqa: F401  (maps `users`, the target of created_by)
from app.db.base import Base

STATUSES = ("draft", "live", "closed")


class Emergency(Base):
    """A crisis page. `departments` empty means national scope. Missions point to it by `missions.emergency_slug`,
    volunteers by `volunteers.emergency_slug` (the sign-up form of its page sets it)."""

    __tablename__ = "emergencies"
    __table_args__ = (CheckConstraint(f"status IN {STATUSES}", name="status"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(150))
    description: Mapped[str] = mapped_column(Text)
    needs: Mapped[str] = mapped_column(Text)  # what is needed, in the coordinators' words
    departments: Mapped[list[str]] = mapped_column(ARRAY(String(3)))
    priority_domains: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    ends_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), server_default="draft", index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    live_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
