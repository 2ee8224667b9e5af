"""The partners' dashboard (`/administration/partenaires/tableau-de-bord`, admins): per partner and per month over
the last 12 months (Paris time), what we exchanged with it.

A mission counts in the month it was created: "shared" are our missions online now that its diffusion rules
cover, "received" its own missions live now. Clicks and applications count in the month they happened, inbound
(it sent us the visitor) and outbound (we sent the visitor to it). Four grouped queries, whatever the number of
partners and months."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from litestar import Controller, get
from litestar.response import Template
from sqlalchemy import ColumnElement, Date, cast, func, literal, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import admin
from app.deps import Db
from app.formats import PARIS
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.partners.context import PartnerContext
from app.partners.diffusion import shared_with
from app.partners.models import Partner, PartnerApplication, PartnerClick

MONTHS = 12
MONTH_NAMES = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
               "novembre", "décembre")
MEASURES = ("shared", "received", "clicks_inbound", "clicks_outbound", "applications_inbound",
            "applications_outbound")


def _month(moment: Any) -> ColumnElement[Any]:
    # Literal SQL, not bound parameters: GROUP BY must see the very expression the SELECT list has.
    paris = func.timezone(literal_column("'Europe/Paris'"), moment)
    return cast(func.date_trunc(literal_column("'month'"), paris), Date)


def months_until(today: date, count: int = MONTHS) -> list[date]:
    """The first days of the last `count` months, oldest first, this month included."""
    firsts = []
    year, month = today.year, today.month
    for _ in range(count):
        firsts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return firsts[::-1]


def month_label(first: date) -> str:
    return f"{MONTH_NAMES[first.month - 1]} {first.year}"


@dataclass(slots=True)
class PartnerFigures:
    id: int
    name: str
    active: bool
    months: dict[date, dict[str, int]] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        return {measure: sum(cells[measure] for cells in self.months.values()) for measure in MEASURES}


def _context(partner: Partner) -> PartnerContext:
    return PartnerContext(id=partner.id, name=partner.name, rate_limit_per_minute=partner.rate_limit_per_minute,
                          diffusion_domains=tuple(partner.diffusion_domains),
                          diffusion_departments=tuple(partner.diffusion_departments),
                          diffusion_organisation_ids=tuple(partner.diffusion_organisation_ids),
                          diffuses_partner_missions=partner.diffuses_partner_missions)


async def figures(session: AsyncSession, *, today: date) -> list[PartnerFigures]:
    partners = list(await session.scalars(select(Partner).order_by(Partner.name, Partner.id)))
    months = months_until(today)
    since = datetime(months[0].year, months[0].month, 1, tzinfo=PARIS)
    found = {partner.id: PartnerFigures(partner.id, partner.name, partner.active,
                                        {first: dict.fromkeys(MEASURES, 0) for first in months})
             for partner in partners}

    def add(rows: Any, measure: str | None = None) -> None:
        for partner_id, month, kind, count in rows:
            cells = found.get(partner_id, PartnerFigures(0, "", False)).months.get(month)
            if cells is not None:
                cells[measure or kind] += int(count)

    if partners:
        created = _month(Mission.created_at)
        shared = union_all(*[
            select(literal(partner.id).label("partner_id"), created.label("month"), func.count().label("n"))
            .select_from(Mission).join(Organisation, Organisation.id == Mission.organisation_id)
            .where(shared_with(_context(partner)), Mission.created_at >= since).group_by(created)
            for partner in partners
        ]).subquery()
        add((row.partner_id, row.month, "shared", row.n) for row in await session.execute(select(shared)))
    received = await session.execute(
        select(Mission.partner_id, _month(Mission.created_at), literal("received"), func.count())
        .where(Mission.partner_id.is_not(None), Mission.deleted_at.is_(None), Mission.status.in_(("published", "full")),
               Mission.created_at >= since)
        .group_by(Mission.partner_id, _month(Mission.created_at))
    )
    add(received)
    clicks = await session.execute(
        select(PartnerClick.partner_id, _month(PartnerClick.created_at), "clicks_" + PartnerClick.direction,
               func.count())
        .where(PartnerClick.created_at >= since)
        .group_by(PartnerClick.partner_id, _month(PartnerClick.created_at), PartnerClick.direction)
    )
    add(clicks)
    applications = await session.execute(
        select(PartnerApplication.partner_id, _month(PartnerApplication.created_at),
               "applications_" + PartnerApplication.direction, func.count())
        .where(PartnerApplication.created_at >= since, PartnerApplication.activity_type == "apply")
        .group_by(PartnerApplication.partner_id, _month(PartnerApplication.created_at), PartnerApplication.direction)
    )
    add(applications)
    return list(found.values())


class PartnerDashboardPage(Controller):
    path = "/administration/partenaires/tableau-de-bord"
    include_in_schema = False
    guards = [admin]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def show(self, db: Db) -> Template:
        today = datetime.now(PARIS).date()
        context = {"partners": await figures(db, today=today), "months": months_until(today),
                   "month_label": month_label}
        return Template("partners/dashboard.html", context=context, headers=PRIVATE)
