"""Cohorts, their departments' choice deadlines, young people, referents' invitations and guardians' consents."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    String,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import models as account_models  # noqa: F401  (maps `users`)
from app.db.base import Base
from app.geo import models as geo_models  # noqa: F401  (maps `departments` and `communes`)


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
