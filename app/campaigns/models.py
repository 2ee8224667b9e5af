from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import models as account_models  # noqa: F401  (maps `users`)
from app.db.base import Base
from app.missions import models as mission_models  # noqa: F401  (maps `missions`)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
MAX_IMAGE_BYTES = 2 * 1024 * 1024


class CampaignImage(Base):
    """An uploaded image, kept in PostgreSQL so that every web process serves it; never changed once stored (its
    address carries its digest, so browsers keep it for good)."""

    __tablename__ = "campaign_images"
    __table_args__ = (
        CheckConstraint(f"content_type IN {IMAGE_TYPES}", name="content_type"),
        CheckConstraint(f"size > 0 AND size <= {MAX_IMAGE_BYTES} AND size = octet_length(data)", name="size"),
        CheckConstraint("width > 0 AND height > 0", name="dimensions"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Campaign(Base):
    """A planned national mobilisation, shown from `starts_on` to `ends_on` (both included). Its missions are those
    tagged for it and the online ones of its domains."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'", name="slug"),
        CheckConstraint("ends_on >= starts_on", name="window"),
        CheckConstraint("image_id IS NULL OR image_alt IS NOT NULL", name="image_alt"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_images.id", ondelete="SET NULL"))
    image_alt: Mapped[str | None] = mapped_column(String(250))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date, index=True)
    domains: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default="{}")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CampaignMission(Base):
    """A mission its managers tagged for a campaign."""

    __tablename__ = "campaign_missions"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("missions.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    tagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
