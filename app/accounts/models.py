from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.geo import models as geo_models  # noqa: F401  (maps `departments`, the target of department_code)


class User(Base):
    """Someone who has signed in at least once; created at the first successful sign-in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Data lifecycle (app/privacy/inactivity.py), for an account without a volunteer row: the inactivity warnings
    # sent for the current period of inactivity, and when the row was anonymised (also set with the volunteer's).
    inactivity_warned_30_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inactivity_warned_7_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The terms of use (app/legal) this person last accepted, and when; NULL: only what their sign-up recorded.
    terms_version: Mapped[int | None] = mapped_column(Integer)
    terms_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CoordinatorScope(Base):
    """A user coordinates one department, or the whole country when `department_code` is NULL."""

    __tablename__ = "coordinator_scopes"
    # NULLS NOT DISTINCT: a user is national coordinator once, not once per row.
    __table_args__ = (UniqueConstraint("user_id", "department_code", postgresql_nulls_not_distinct=True),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))


class ReferentScope(Base):
    """A user moderates (organisations, missions) one department, every department of one region, or the whole
    country when both codes are NULL."""

    __tablename__ = "referent_scopes"
    __table_args__ = (
        UniqueConstraint("user_id", "department_code", "region_code", postgresql_nulls_not_distinct=True),
        CheckConstraint("department_code IS NULL OR region_code IS NULL", name="one_level"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))


class RoleChange(Base):
    """The audit of every role granted or revoked: who (an admin, or the command line), when, to whom, what."""

    __tablename__ = "role_changes"
    __table_args__ = (
        CheckConstraint("action IN ('grant', 'revoke')", name="action"),
        CheckConstraint("role IN ('admin', 'coordinator', 'referent')", name="role"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(254))  # the admin's address then, or "ligne de commande"
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(400))  # "national", "departements:01,02" or "region:84"
