"""The hours a tutor declares for a placement, day by day, through a signed link (`Purpose.HOURS`, subject the
placement id) that works once the agreement is fully signed; at 84 hours the placement is completed, once, and the
certificate (`Purpose.CERTIFICATE`) is mailed to the young person and their guardian."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.after_commit import Clients, after_commit
from app.formats import PARIS
from app.youth import links, pdf
from app.youth.links import Purpose, YouthLinkExpired
from app.youth.models import (
    COMPLETION_HOURS,
    PlacementStatus,
    YoungPerson,
    YouthAgreement,
    YouthHours,
    YouthPlacement,
)

PATH = "/snu/heures"
CERTIFICATE_PATH = "/snu/attestation"
LINK_DAYS_AFTER_MISSION = 60
CERTIFICATE_DAYS = 365
MAX_DAY_HOURS = Decimal(12)


class HoursRefused(Exception):
    """A declaration the rules refuse; `message` says why, in French."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def hours_link_expiry(end_date: date, now: float) -> int:
    """A tutor's hours link lasts until some time after the mission's last day."""
    end = datetime(end_date.year, end_date.month, end_date.day, tzinfo=UTC) + timedelta(days=LINK_DAYS_AFTER_MISSION)
    return max(int(end.timestamp()), int(now) + 86_400)


def hours_url(base_url: str, secret: str, placement_id: int, expires_at: int) -> str:
    return links.url(base_url, PATH, links.mint(secret, Purpose.HOURS, placement_id, int(expires_at)))


def certificate_url(base_url: str, secret: str, placement_id: int, expires_at: int) -> str:
    return links.url(base_url, CERTIFICATE_PATH, links.mint(secret, Purpose.CERTIFICATE, placement_id,
                                                            int(expires_at)))


@dataclass(frozen=True, slots=True)
class HoursView:
    placement_id: int
    first_name: str
    last_name: str
    mission_title: str
    start_date: date
    end_date: date
    signed: bool  # the agreement is fully signed
    status: str
    days: list[tuple[date, Decimal]]

    @property
    def total(self) -> Decimal:
        return sum((hours for _, hours in self.days), Decimal(0))

    @property
    def completion_hours(self) -> int:
        return COMPLETION_HOURS


async def _view(session: AsyncSession, placement_id: int) -> HoursView | None:
    row = (await session.execute(
        select(YouthPlacement.status, YouthAgreement.content, YouthAgreement.signed_at)
        .join(YouthAgreement, YouthAgreement.placement_id == YouthPlacement.id)
        .where(YouthPlacement.id == placement_id)
    )).first()
    if row is None or row.status == PlacementStatus.CANCELLED:
        return None
    content: dict[str, Any] = row.content
    days = (await session.execute(
        select(YouthHours.day, YouthHours.hours).where(YouthHours.placement_id == placement_id)
        .order_by(YouthHours.day)
    )).tuples().all()
    offer = content.get("offer", {})
    return HoursView(placement_id=placement_id, first_name=str(content["young"]["first_name"]),
                     last_name=str(content["young"]["last_name"]), mission_title=str(content.get("mission_title")),
                     start_date=date.fromisoformat(offer["start_date"]), end_date=date.fromisoformat(offer["end_date"]),
                     signed=row.signed_at is not None, status=row.status, days=list(days))


async def check(session: AsyncSession, *, secret: str, token: object, now: float) -> HoursView:
    """A genuine hours link's placement. Raises `YouthLinkInvalid` or `YouthLinkExpired` (cancelled or gone)."""
    placement_id = links.read_id(secret, Purpose.HOURS, token, now)
    view = await _view(session, placement_id)
    if view is None:
        raise YouthLinkExpired
    return view


def parse_hours(raw: str) -> Decimal:
    """`raw` as hours (« 3 », « 3,5 », « 3.25 »); raises `HoursRefused`."""
    text = raw.strip().replace(",", ".")
    try:
        hours = Decimal(text) if len(text) <= 8 else None
    except InvalidOperation:
        hours = None
    if hours is None or not hours.is_finite():
        raise HoursRefused("Indiquez un nombre d'heures, par exemple 3 ou 3,5.")
    if hours <= 0 or hours > MAX_DAY_HOURS:
        raise HoursRefused("Une journée compte plus de 0 et au plus 12 heures.")
    if hours != hours.quantize(Decimal("0.01")):
        raise HoursRefused("Indiquez les heures au centième près au plus, par exemple 3,25.")
    return hours


def parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip()) if len(raw) <= 10 else date.min
    except ValueError:
        raise HoursRefused("Indiquez la date au format jj/mm/aaaa.") from None


async def declare(session: AsyncSession, *, placement_id: int, day: date, hours: Decimal, today: date) -> bool:
    """Declares (or replaces) one day's hours. The placement row is locked first, so concurrent declarations
    complete it once; reaching 84 hours completes it and, after commit, mails the certificate. Returns whether this
    declaration completed it. Raises `HoursRefused` or `YouthLinkExpired`."""
    locked = (await session.execute(
        select(YouthPlacement.status, YouthAgreement.signed_at, YouthAgreement.content)
        .join(YouthAgreement, YouthAgreement.placement_id == YouthPlacement.id)
        .where(YouthPlacement.id == placement_id).with_for_update(of=YouthPlacement)
    )).first()
    if locked is None or locked.status == PlacementStatus.CANCELLED:
        raise YouthLinkExpired
    if locked.signed_at is None:
        raise HoursRefused("Les heures se déclarent une fois le contrat d'engagement signé par toutes les parties.")
    if locked.status == PlacementStatus.COMPLETED:
        raise HoursRefused("La mission est déjà accomplie : son attestation a été délivrée.")
    offer = locked.content.get("offer", {})
    start, end = date.fromisoformat(offer["start_date"]), date.fromisoformat(offer["end_date"])
    if day > today:
        raise HoursRefused("On ne déclare pas d'heures pour un jour à venir.")
    if not start <= day <= end:
        raise HoursRefused(f"Le jour doit être compris entre le {start:%d/%m/%Y} et le {end:%d/%m/%Y}, les dates "
                           "de la mission.")
    await session.execute(
        insert(YouthHours).values(placement_id=placement_id, day=day, hours=hours)
        .on_conflict_do_update(constraint="uq_youth_hours_placement_id_day",
                               set_={"hours": hours, "declared_at": func.now()})
    )
    total = await session.scalar(select(func.coalesce(func.sum(YouthHours.hours), 0))
                                 .where(YouthHours.placement_id == placement_id))
    if Decimal(total or 0) < COMPLETION_HOURS:
        return False
    await session.execute(
        update(YouthPlacement).where(YouthPlacement.id == placement_id,
                                     YouthPlacement.status == PlacementStatus.PLACED)
        .values(status=PlacementStatus.COMPLETED.value, completed_at=func.now())
    )
    from queues import enqueue

    async def send(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.send_youth_agreement_letters, clients.rq_connection,
                                [["certificate", placement_id]])

    after_commit(session, send, key=f"youth-certificate:{placement_id}")
    return True


@dataclass(frozen=True, slots=True)
class Certificate:
    placement_id: int
    content: dict[str, Any]
    hours: Decimal
    completed_on: date

    def document(self) -> bytes:
        young = self.content.get("young", {})
        return pdf.certificate_pdf(
            first_name=str(young.get("first_name", "")), last_name=str(young.get("last_name", "")),
            mission_title=str(self.content.get("mission_title", "")),
            organisation_name=str(self.content.get("organisation", {}).get("name", "")),
            cohort_name=str(self.content.get("cohort_name", "")), hours=f"{self.hours.normalize():f}",
            completed_on=self.completed_on)


async def certificate(session: AsyncSession, placement_id: int) -> Certificate | None:
    """A completed placement's certificate; None before completion."""
    row = (await session.execute(
        select(YouthPlacement.status, YouthPlacement.completed_at, YouthAgreement.content)
        .join(YouthAgreement, YouthAgreement.placement_id == YouthPlacement.id)
        .where(YouthPlacement.id == placement_id)
    )).first()
    if row is None or row.status != PlacementStatus.COMPLETED or row.completed_at is None:
        return None
    total = await session.scalar(select(func.coalesce(func.sum(YouthHours.hours), 0))
                                 .where(YouthHours.placement_id == placement_id))
    return Certificate(placement_id=placement_id, content=row.content, hours=Decimal(total or 0),
                       completed_on=row.completed_at.astimezone(PARIS).date())


async def certificate_of_link(session: AsyncSession, *, secret: str, token: object, now: float) -> Certificate | None:
    return await certificate(session, links.read_id(secret, Purpose.CERTIFICATE, token, now))


async def own_placement(session: AsyncSession, user_id: int) -> int | None:
    return await session.scalar(
        select(YouthPlacement.id).join(YoungPerson, YoungPerson.id == YouthPlacement.young_person_id)
        .where(YoungPerson.user_id == user_id, YouthPlacement.status != PlacementStatus.CANCELLED)
        .order_by(YouthPlacement.id.desc()).limit(1)
    )
