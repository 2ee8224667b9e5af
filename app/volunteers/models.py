from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    false,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.geo import models as geo_models  # noqa: F401  (maps `communes`, the target of commune_code)


class Volunteer(Base):
    """A citizen who signed up. One row per normalised e-mail: the natural key that makes drains idempotent."""

    __tablename__ = "volunteers"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    receipt: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(16))
    birth_date: Mapped[date] = mapped_column(Date)
    postal_code: Mapped[str] = mapped_column(String(5))
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), index=True)
    domains: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    availability: Mapped[str] = mapped_column(String(20))
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(80)))
    emergency_slug: Mapped[str | None] = mapped_column(String(64), index=True)
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # E-mail preferences: about my applications; proposals and news of an emergency. Sign-in links always go.
    mail_applications: Mapped[bool] = mapped_column(Boolean, server_default=true())
    mail_emergencies: Mapped[bool] = mapped_column(Boolean, server_default=true())
    # Signed up past the per-address limit: kept, but shown to nobody, dispatched nowhere and sent no other mail
    # until the e-mail is confirmed from the link sent to it; purged after 30 days without confirmation.
    unconfirmed: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Data lifecycle (app/privacy/inactivity.py): the last profile change (other activity is read where it happens),
    # the inactivity warnings sent for the current period of inactivity, and when the row was anonymised.
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=func.now())
    inactivity_warned_30_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inactivity_warned_7_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The version of the terms of use (app/legal) accepted with the sign-up; NULL for sign-ups older than versioning.
    terms_version: Mapped[int | None] = mapped_column(Integer)


class Erasure(Base):
    """A tombstone: this (keyed digest of an) e-mail was erased at this time, so that copies of its sign-up queued
    before then are never written back. Kept only while such a copy can still be queued."""

    __tablename__ = "erasures"

    email_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
