"""Partner platforms, their API keys, feed imports, and the clicks and applications they exchange with us.

A partner's own missions are rows of `missions` (with `partner_id` and the partner's `client_id`), owned by an
organisation row keyed on (partner_id, partner_key): they are searched and shown like ours but applied to on the
partner's site, through a tracked outbound link."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

IMPORT_STATUSES = ("running", "succeeded", "failed")
# inbound: a partner sent a visitor to one of our missions; outbound: we sent one to a partner's mission.
DIRECTIONS = ("inbound", "outbound")
ACTIVITY_TYPES = ("apply", "account")  # what a partner reports after a click (`POST /v2/activity`)
DEFAULT_RATE_LIMIT = 1200  # requests per minute, per partner, across every web process


class Partner(Base):
    """A platform that reads our missions with an API key, publishes its own (API or feed), or both."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(150))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    website: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, server_default=str(DEFAULT_RATE_LIMIT))
    # Diffusion rules: which of our missions it receives. An empty list leaves that criterion open.
    diffusion_domains: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default="{}")
    diffusion_departments: Mapped[list[str]] = mapped_column(ARRAY(String(3)), server_default="{}")
    diffusion_organisation_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    # Whether it also receives the missions other partners publish with us (never its own back).
    diffuses_partner_missions: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Its XML feed, imported on a schedule; the credentials are sent as HTTP Basic and never shown back.
    feed_url: Mapped[str | None] = mapped_column(String(500))
    feed_username: Mapped[str | None] = mapped_column(String(200))
    feed_password: Mapped[str | None] = mapped_column(String(200))
    feed_interval_minutes: Mapped[int] = mapped_column(Integer, server_default="360")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PartnerApiKey(Base):
    """A key a partner sends in `x-api-key`: only its SHA-256 is kept, and its first characters to tell keys apart."""

    __tablename__ = "partner_api_keys"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PartnerImport(Base):
    """One run of a partner's feed import: what it created, updated, left unchanged, deleted and refused (why)."""

    __tablename__ = "partner_imports"
    __table_args__ = (CheckConstraint(f"status IN {IMPORT_STATUSES}", name="status"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)  # why the whole run failed (then nothing was deleted)
    received: Mapped[int] = mapped_column(Integer, server_default="0")
    created: Mapped[int] = mapped_column(Integer, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    deleted: Mapped[int] = mapped_column(Integer, server_default="0")
    refused: Mapped[int] = mapped_column(Integer, server_default="0")
    # [{"clientId": …, "reason": …}], the first ones only (the counts are complete).
    refusals: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")


class PartnerClick(Base):
    """A click on a tracked link `/r/{mission_id}/{partner_id}`; `token` is the click id handed on, signed."""

    __tablename__ = "partner_clicks"
    __table_args__ = (CheckConstraint(f"direction IN {DIRECTIONS}", name="direction"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    mission_id: Mapped[int | None] = mapped_column(ForeignKey("missions.id", ondelete="SET NULL"), index=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)


class PartnerApplication(Base):
    """An application that followed a click: reported by the partner (`POST /v2/activity`, outbound) or made
    through our own apply flow (inbound). One per click."""

    __tablename__ = "partner_applications"
    __table_args__ = (CheckConstraint(f"direction IN {DIRECTIONS}", name="direction"),
                      CheckConstraint(f"activity_type IN {ACTIVITY_TYPES}", name="activity_type"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    click_id: Mapped[int] = mapped_column(ForeignKey("partner_clicks.id", ondelete="CASCADE"), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    mission_id: Mapped[int | None] = mapped_column(ForeignKey("missions.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24))
    activity_type: Mapped[str] = mapped_column(String(8), server_default="apply")  # what the partner reported
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
