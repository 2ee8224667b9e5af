"""The journal of switch changes: who (an admin, or the command line), when, which switch, from what to what, why."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Identity, String
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import models as account_models  # noqa: F401  (maps `users`, the target of actor_user_id)
from app.db.base import Base
from app.switches.schemas import REASON_LENGTH


class SwitchChangeRow(Base):
    __tablename__ = "switch_changes"
    __table_args__ = (
        CheckConstraint("switch IN ('maintenance', 'organisations_read_only', 'pause_jobs')", name="switch"),
        CheckConstraint("actor IN ('admin', 'commande')", name="actor"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The change's own id, given when it was flipped in Redis: copying it twice writes one row.
    change_id: Mapped[str] = mapped_column(String(32), unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # when it was flipped
    switch: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[bool] = mapped_column(Boolean)
    new_value: Mapped[bool] = mapped_column(Boolean)
    actor: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
