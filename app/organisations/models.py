from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.geo import models as geo_models  # noqa: F401  (maps `communes`, the target of commune_code)
from app.partners import models as partner_models  # noqa: F401  (maps `partners`, the target of partner_id)

TYPES = ("association", "collectivite", "organisation_publique", "organisation_privee")
STATUSES = ("draft", "awaiting_validation", "validated", "refused", "suspended")


class Organisation(Base):
    """An association, local authority, public body or company that offers missions once validated."""

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint(f"type IN {TYPES}", name="type"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        Index("uq_organisations_partner_id_partner_key", "partner_id", "partner_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(150))
    type: Mapped[str] = mapped_column(String(32))
    rna: Mapped[str | None] = mapped_column(String(10))
    siret: Mapped[str | None] = mapped_column(String(14))
    address_line: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(5))
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), index=True)
    description: Mapped[str] = mapped_column(Text)
    donation_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32), server_default="draft", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)  # why it was refused or suspended
    status_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When its managers were last e-mailed about new applications: the next e-mail tells what came after it.
    applications_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The version of the terms of use (app/legal) accepted when the organisation was registered.
    terms_version: Mapped[int | None] = mapped_column(Integer)
    # The organisation behind a partner's missions (app/partners): keyed on the partner's own organisation id, or its
    # RNA or SIRET ("id:…", "rna:…", "siret:…"); it has no managers here and is moderated with its missions.
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="RESTRICT"))
    partner_key: Mapped[str | None] = mapped_column(String(120))


class OrganisationManager(Base):
    """A user who manages an organisation (its creator first)."""

    __tablename__ = "organisation_managers"
    __table_args__ = (UniqueConstraint("organisation_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class ManagerInvitation(Base):
    """An invitation to manage an organisation, sent by e-mail: by a manager to a co-manager, or to the person who
    registered the organisation without an account (then `invited_by` is NULL). Only the SHA-256 of its secret is
    kept; it is used once (`accepted_at`) and lapses at `expires_at`."""

    __tablename__ = "manager_invitations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
