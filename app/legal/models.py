from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

KINDS = ("mentions", "accessibility", "privacy", "terms")


class LegalText(Base):
    """One published version of a legal text; never changed once published, so any version stays readable.
    `major` (terms only): a version that everyone must accept again at their next sign-in."""

    __tablename__ = "legal_texts"
    __table_args__ = (
        UniqueConstraint("kind", "version"),
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        CheckConstraint("version >= 1", name="version"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    major: Mapped[bool] = mapped_column(Boolean, server_default=false())
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The admin's user id, NULL for the release step. No foreign key: the text outlives the publisher's account.
    published_by: Mapped[int | None] = mapped_column(BigInteger)
