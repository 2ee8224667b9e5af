from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, CheckConstraint, DateTime, ForeignKey, String, Text, func
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import models as account_models  # noqa: F401  (maps `users`)
from app.db.base import Base
from app.geo import models as geo_models  # noqa: F401  (maps `communes`)
from app.organisations import models as organisation_models  # noqa: F401  (maps `organisations`)

REVIEWS = ("awaiting_validation", "refused", "validated")


class CityPage(Base):
    """A commune's page written by its local authority: the version the public reads (`text`, `mission_ids`, set
    when a referent validates) and the last version sent for validation (`proposed_*`), which stays apart until a
    referent validates it, so an edit never takes the validated page offline."""

    __tablename__ = "city_pages"
    __table_args__ = (CheckConstraint(f"review IN {REVIEWS}", name="review"),)

    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    text: Mapped[str | None] = mapped_column(Text)  # None until a first version is validated
    mission_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=sql_text("'{}'"))
    validated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    validated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    proposed_text: Mapped[str] = mapped_column(Text)
    proposed_mission_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=sql_text("'{}'"))
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    review: Mapped[str] = mapped_column(String(24), server_default="awaiting_validation", index=True)
    review_reason: Mapped[str | None] = mapped_column(Text)  # why the referent refused the proposed version
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
