"""Cohorts, their departments' choice deadlines, young people, referents' invitations and guardians' consents; the
missions of general interest (MIG) offered to them, their ranked choices, allocations and placements, agreements and
their signatures, the hours tutors declare."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import models as account_models  # noqa: F401  (maps `users`)
from app.db.base import Base
from app.geo import models as geo_models  # noqa: F401  (maps `departments` and `communes`)
from app.missions import models as mission_models  # noqa: F401  (maps `missions`)


class YouthStatus(StrEnum):
    """Where a young person stands; only `ready` may choose a mission (`app.youth.service.can_choose`)."""

    AWAITING_CONSENT = "awaiting_consent"  # a minor whose guardian has not answered yet
    CONSENT_REFUSED = "consent_refused"  # the guardian said no
    READY = "ready"  # of age, or a minor whose guardian consented


class YouthSource(StrEnum):
    INVITATION = "invitation"  # a departmental referent invited them
    SIGNUP = "signup"  # they signed up into a cohort open for it


class ConsentDecision(StrEnum):
    GIVEN = "given"
    REFUSED = "refused"


class OfferStatus(StrEnum):
    """A MIG offer is seen by young people only once its department's referent validated it."""

    AWAITING_VALIDATION = "awaiting_validation"
    VALIDATED = "validated"
    REFUSED = "refused"  # with a reason its organisation reads
    WITHDRAWN = "withdrawn"  # closed by its organisation, or its mission left the platform


class OfferSource(StrEnum):
    ORGANISATION = "organisation"  # opened by one of its organisation's managers
    PARTNER = "partner"  # a partner's mission sent with `snu` and `snuPlaces` (app/partners)


class AllocationStatus(StrEnum):
    RUNNING = "running"  # the job is solving
    PREVIEW = "preview"  # solved: the referent reviews and adjusts it
    CONFIRMED = "confirmed"  # its placements are made
    DISCARDED = "discarded"  # the referent dropped it, or ran another
    FAILED = "failed"


class PlacementStatus(StrEnum):
    PLACED = "placed"  # the agreement is signed, or waits for signatures
    COMPLETED = "completed"  # 84 hours declared: the certificate is issued
    CANCELLED = "cancelled"


class AgreementParty(StrEnum):
    """Who signs an agreement; a young person of age has no guardian party."""

    YOUNG = "young"
    GUARDIAN = "guardian"
    ORGANISATION = "organisation"  # the offer's tutor signs for it
    REFERENT = "referent"


COMPLETION_HOURS = 84  # a MIG is complete at 84 declared hours


def _values(enum: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{member.value}'" for member in enum) + ")"


class Cohort(Base):
    """One SNU session: the cohesion stay, then the period in which missions of general interest take place."""

    __tablename__ = "cohorts"
    __table_args__ = (
        CheckConstraint("stay_start <= stay_end", name="stay_dates"),
        CheckConstraint("missions_start <= missions_end", name="mission_dates"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    stay_start: Mapped[date] = mapped_column(Date)
    stay_end: Mapped[date] = mapped_column(Date)
    missions_start: Mapped[date] = mapped_column(Date)
    missions_end: Mapped[date] = mapped_column(Date)
    open_for_signup: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CohortDepartmentDeadline(Base):
    """The last day the young people of one department choose their mission, in one cohort."""

    __tablename__ = "cohort_department_deadlines"

    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), primary_key=True)
    choose_by: Mapped[date] = mapped_column(Date)


class YoungPerson(Base):
    """A young person's SNU record, on their account (`users`): one per person, so the same address can also be a
    volunteer's from 16."""

    __tablename__ = "young_people"
    __table_args__ = (
        CheckConstraint(f"status IN {_values(YouthStatus)}", name="status"),
        CheckConstraint(f"source IN {_values(YouthSource)}", name="source"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    postal_code: Mapped[str] = mapped_column(String(5))
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    status: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class YouthInvitation(Base):
    """A referent's invitation to join a cohort; its link is signed over its id (app/youth/links.py)."""

    __tablename__ = "youth_invitations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GuardianConsent(Base):
    """One request for a minor's guardian to consent, and its answer (once: a decided request stays decided)."""

    __tablename__ = "guardian_consents"
    __table_args__ = (CheckConstraint(f"decision IN {_values(ConsentDecision)}", name="decision"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    young_person_id: Mapped[int] = mapped_column(ForeignKey("young_people.id", ondelete="CASCADE"), index=True)
    guardian_name: Mapped[str] = mapped_column(String(200))  # as the young person gave it
    guardian_email: Mapped[str] = mapped_column(String(254))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(String(8))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    signed_name: Mapped[str | None] = mapped_column(String(200))  # the name the guardian typed when answering


class YouthOffer(Base):
    """A mission opened to young people of the SNU: its own youth places, dates and hours, and a tutor. One per
    mission; `department_code` is the mission's (its first address, else its organisation's), whose referents
    validate it."""

    __tablename__ = "youth_offers"
    __table_args__ = (
        CheckConstraint(f"status IN {_values(OfferStatus)}", name="status"),
        CheckConstraint(f"source IN {_values(OfferSource)}", name="source"),
        CheckConstraint("places BETWEEN 1 AND 500", name="places"),
        CheckConstraint("start_date <= end_date", name="dates"),
        CheckConstraint("hours BETWEEN 1 AND 2000", name="hours"),
        Index("ix_youth_offers_department_status", "department_code", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("missions.id", ondelete="CASCADE"), unique=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    places: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    hours: Mapped[int] = mapped_column(Integer)  # the hours the mission offers in all
    # The tutor: a manager of the organisation (`tutor_user_id`), or for a partner's offer whoever it names; the
    # name and address are copied so agreements and hour links reach them even without an account.
    tutor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    tutor_name: Mapped[str | None] = mapped_column(String(200))
    tutor_email: Mapped[str | None] = mapped_column(String(254))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), server_default=OfferStatus.AWAITING_VALIDATION.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class YouthChoice(Base):
    """A young person's ranked choice: rank 1 is their first; at most five (`surge.youth.MAX_CHOICES`)."""

    __tablename__ = "youth_choices"
    __table_args__ = (
        CheckConstraint("rank BETWEEN 1 AND 5", name="rank"),
        UniqueConstraint("young_person_id", "offer_id", name="uq_youth_choices_young_person_id_offer_id"),
    )

    young_person_id: Mapped[int] = mapped_column(ForeignKey("young_people.id", ondelete="CASCADE"),
                                                 primary_key=True)
    rank: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("youth_offers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class YouthAllocation(Base):
    """One allocation run for a cohort's young people of one department: solved by a job, reviewed, adjusted and
    confirmed by a referent. `plan` is the engine's answer as JSON (assignments, unplaced with reasons, choices
    left out); at most one run per cohort and department is running or in preview."""

    __tablename__ = "youth_allocations"
    __table_args__ = (
        CheckConstraint(f"status IN {_values(AllocationStatus)}", name="status"),
        Index("uq_youth_allocations_open", "cohort_id", "department_code", unique=True,
              postgresql_where=text("status IN ('running', 'preview')")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    status: Mapped[str] = mapped_column(String(16), server_default=AllocationStatus.RUNNING.value)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    solved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class YouthPlacement(Base):
    """A young person on an offer: made when a referent confirms an allocation; at most one that is not cancelled
    per young person."""

    __tablename__ = "youth_placements"
    __table_args__ = (
        CheckConstraint(f"status IN {_values(PlacementStatus)}", name="status"),
        CheckConstraint("rank IS NULL OR rank BETWEEN 1 AND 5", name="rank"),
        Index("uq_youth_placements_active", "young_person_id", unique=True,
              postgresql_where=text("status <> 'cancelled'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    young_person_id: Mapped[int] = mapped_column(ForeignKey("young_people.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("youth_offers.id", ondelete="RESTRICT"), index=True)
    allocation_id: Mapped[int | None] = mapped_column(ForeignKey("youth_allocations.id", ondelete="SET NULL"))
    rank: Mapped[int | None] = mapped_column(SmallInteger)  # the choice it fulfils; None when a referent chose
    status: Mapped[str] = mapped_column(String(16), server_default=PlacementStatus.PLACED.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the certificate's date
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class YouthAgreement(Base):
    """The agreement (contrat d'engagement) of one placement. `content` is the snapshot its PDF is written from,
    taken when it is made, and `digest` that PDF's SHA-256: every party signs the same document."""

    __tablename__ = "youth_agreements"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    placement_id: Mapped[int] = mapped_column(ForeignKey("youth_placements.id", ondelete="CASCADE"), unique=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # when the last party signed


class YouthAgreementSignature(Base):
    """One party's signature of an agreement, asked by a signed e-mail link and given once."""

    __tablename__ = "youth_agreement_signatures"
    __table_args__ = (CheckConstraint(f"party IN {_values(AgreementParty)}", name="party"),)

    agreement_id: Mapped[int] = mapped_column(ForeignKey("youth_agreements.id", ondelete="CASCADE"),
                                              primary_key=True)
    party: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    signed_name: Mapped[str | None] = mapped_column(String(200))  # the name typed when signing


class YouthHours(Base):
    """Hours a tutor declares for one day of a placement (one row per day; declaring again replaces it)."""

    __tablename__ = "youth_hours"
    __table_args__ = (
        CheckConstraint("hours > 0 AND hours <= 12", name="hours"),
        UniqueConstraint("placement_id", "day", name="uq_youth_hours_placement_id_day"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    placement_id: Mapped[int] = mapped_column(ForeignKey("youth_placements.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    hours: Mapped[Decimal] = mapped_column(Numeric(4, 2))
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
