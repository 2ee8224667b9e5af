from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import models as account_models  # noqa: F401  (maps `users`)
from app.db.base import Base
from app.geo import models as geo_models  # noqa: F401  (maps `communes`, the target of commune_code)
from app.organisations import models as organisation_models  # noqa: F401  (maps `organisations`)
from app.partners import models as partner_models  # noqa: F401  (maps `partners`, the target of partner_id)

STATUSES = ("draft", "awaiting_validation", "published", "full", "finished", "cancelled", "suspended")
TEMPLATE_STATUSES = ("draft", "validated", "archived")
DECISIONS = ("validate", "refuse", "suspend")
# The keyword search's document (migration 0013): title weighs A, description and activities B, French stems of
# accent-folded words (the `fr_unaccent` configuration).
SEARCH_VECTOR = (
    "setweight(to_tsvector('fr_unaccent'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('fr_unaccent'::regconfig, coalesce(description, '') || ' ' || "
    "mission_activity_words(activities)), 'B')"
)


class Mission(Base):
    """A mission an organisation offers; online while published (or full) and its organisation is online."""

    __tablename__ = "missions"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint("places > 0", name="places"),
        Index("ix_missions_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_missions_activities", "activities", postgresql_using="gin"),
        # A partner's mission is known by its own id on the partner's side.
        Index("uq_missions_partner_id_client_id", "partner_id", "client_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(150))
    description: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(String(40))
    activities: Mapped[list[str]] = mapped_column(ARRAY(String(80)))  # slugs of app.reference.ACTIVITIES
    remote: Mapped[bool] = mapped_column(Boolean)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    schedule: Mapped[str | None] = mapped_column(String(300))  # a recurring schedule, in words
    places: Mapped[int] = mapped_column(Integer)
    open_to_minors: Mapped[bool] = mapped_column(Boolean)
    prerequisites: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[bool] = mapped_column(Boolean, server_default="false")
    emergency_slug: Mapped[str | None] = mapped_column(String(80), index=True)
    status: Mapped[str] = mapped_column(String(32), server_default="draft", index=True)
    # Why moderation sent it back to draft, or suspended it: shown to its managers.
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The validated template its text comes from: such a mission publishes without moderation.
    template_id: Mapped[int | None] = mapped_column(ForeignKey("mission_templates.id", ondelete="SET NULL"),
                                                    index=True)
    status_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # A partner's mission (app/partners): applied to on the partner's site, at `application_url`, through a tracked
    # link; it takes no part in our capacity, applications or dispatch. Deleted by the partner: cancelled, with
    # `deleted_at`. `import_digest` tells an unchanged record from a changed one when its feed comes again.
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    client_id: Mapped[str | None] = mapped_column(String(200))
    application_url: Mapped[str | None] = mapped_column(String(1000))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    import_digest: Mapped[str | None] = mapped_column(String(32))
    # The record the partner last sent (app/partners/upsert.py), for partial updates and /v2 answers.
    partner_record: Mapped[dict[str, Any] | None] = mapped_column(JSONB, deferred=True)
    # Written by PostgreSQL, read by the search only: never loaded with the mission.
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR, Computed(SEARCH_VECTOR, persisted=True),
                                                      deferred=True)


class MissionTemplate(Base):
    """A mission text written by admins or coordinators and validated once by an admin or a national referent other
    than its author, for standard missions published in bulk."""

    __tablename__ = "mission_templates"
    __table_args__ = (CheckConstraint(f"status IN {TEMPLATE_STATUSES}", name="status"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(150))
    description: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(String(40))
    activities: Mapped[list[str]] = mapped_column(ARRAY(String(80)))
    open_to_minors: Mapped[bool] = mapped_column(Boolean)
    prerequisites: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="draft", index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who last changed its text: like its author, they may not validate it.
    edited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MissionModeration(Base):
    """A referent's decision on a mission: validated or refused while awaiting validation, or suspended once online.
    The last 12 months of them make an organisation trusted (its missions then publish at once)."""

    __tablename__ = "mission_moderations"
    __table_args__ = (
        CheckConstraint(f"decision IN {DECISIONS}", name="decision"),
        Index("ix_mission_moderations_organisation", "organisation_id", "decided_at"),  # the trust question
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    mission_id: Mapped[int | None] = mapped_column(ForeignKey("missions.id", ondelete="SET NULL"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MissionAddress(Base):
    """Where a mission happens; the commune's town-hall point is copied so the search needs no join for distance."""

    __tablename__ = "mission_addresses"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("missions.id", ondelete="CASCADE"), index=True)
    address_line: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(5))
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
