"""The public statistics' SQL, run by the refresh job only (queues/statistics.py), never on a request path: each
measure counted by month (Paris time) and by department, in one read-only snapshot, assembled into the document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, literal, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.applications.models import Application
from app.formats import SMALL_COUNT, decimal, in_paris
from app.geo.models import Commune
from app.maps.render import choropleth
from app.missions.models import Mission, MissionAddress
from app.organisations.models import Organisation
from app.statistics.schemas import DepartmentRow, Month, Series, Statistics
from app.volunteers.models import Volunteer
from surge.coordination.figures import department_populations, per_thousand

MONTHS = 24
ZONE = "Europe/Paris"
PUBLISHED = ("published", "full", "finished")  # missions that were offered to volunteers
MONTH_NAMES = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
               "novembre", "décembre")


@dataclass(frozen=True, slots=True)
class Measure:
    key: str
    title: str  # the section's heading
    new: str  # what a month's bar counts
    cumulative: str  # what the line counts
    unit: str  # a count's noun, plural
    people: bool  # counts of people: "moins de 10" and no rate under SMALL_COUNT in a department


MEASURES = (
    Measure("volunteers", "Bénévoles inscrits", "Nouveaux bénévoles inscrits par mois",
            "Bénévoles inscrits au total, en fin de mois", "bénévoles", True),
    Measure("missions", "Missions publiées", "Nouvelles missions publiées par mois",
            "Missions publiées au total, en fin de mois", "missions", False),
    Measure("applications", "Candidatures", "Nouvelles candidatures par mois",
            "Candidatures au total, en fin de mois", "candidatures", True),
    Measure("organisations", "Structures validées", "Nouvelles structures validées par mois",
            "Structures validées au total, en fin de mois", "structures", False),
)
BY_KEY = {measure.key: measure for measure in MEASURES}


@dataclass(frozen=True, slots=True)
class Counts:
    by_month: dict[date, int]  # first day of the month (Paris) → count
    by_department: dict[str, int]


def _month(moment: Any) -> Any:
    # Literals, not parameters: the GROUP BY must repeat the very expression the SELECT has.
    return func.date_trunc(literal("month", literal_execute=True),
                           func.timezone(literal(ZONE, literal_execute=True), moment))


async def _counts(session: AsyncSession, moment: Any, department: Any, base: Select[Any]) -> Counts:
    """`base` selects the counted rows (with the joins `department` needs): grouped once by month, once by
    department; a row without a department (a mission done from home) counts in the months only."""
    month = _month(moment).label("month")
    months = await session.execute(base.with_only_columns(month, func.count()).group_by(month))
    departments = await session.execute(
        base.with_only_columns(department, func.count()).where(department.is_not(None)).group_by(department)
    )
    return Counts({row[0].date(): int(row[1]) for row in months}, {str(row[0]): int(row[1]) for row in departments})


def _first_address() -> Any:
    """Each mission's first address: a mission with several places counts once, where it starts."""
    return (
        select(MissionAddress.mission_id, MissionAddress.commune_code).ext(distinct_on(MissionAddress.mission_id))
        .order_by(MissionAddress.mission_id, MissionAddress.id).subquery()
    )


async def volunteers(session: AsyncSession) -> Counts:
    """Saved sign-ups, by when they were accepted and where the volunteer lives; unconfirmed ones are shown nowhere."""
    base = (select(Volunteer.id).join(Commune, Commune.code == Volunteer.commune_code)
            .where(Volunteer.unconfirmed.is_(False)))
    return await _counts(session, Volunteer.accepted_at, Commune.department_code, base)


async def missions(session: AsyncSession) -> Counts:
    """Missions that were published (online, full or finished), by creation and by their first address."""
    first = _first_address()
    base = (select(Mission.id).outerjoin(first, first.c.mission_id == Mission.id)
            .outerjoin(Commune, Commune.code == first.c.commune_code).where(Mission.status.in_(PUBLISHED)))
    return await _counts(session, Mission.created_at, Commune.department_code, base)


async def applications(session: AsyncSession) -> Counts:
    """Every application, whatever became of it, by when it was made and the department of its mission."""
    first = _first_address()
    base = (select(Application.id).join(Volunteer, Volunteer.id == Application.volunteer_id)
            .outerjoin(first, first.c.mission_id == Application.mission_id)
            .outerjoin(Commune, Commune.code == first.c.commune_code).where(Volunteer.unconfirmed.is_(False)))
    return await _counts(session, Application.applied_at, Commune.department_code, base)


async def organisations(session: AsyncSession) -> Counts:
    """Validated organisations, by registration and by the commune of their address."""
    base = (select(Organisation.id).join(Commune, Commune.code == Organisation.commune_code)
            .where(Organisation.status == "validated"))
    return await _counts(session, Organisation.created_at, Commune.department_code, base)


def last_months(now: datetime, count: int = MONTHS) -> list[date]:
    """The first days of the `count` months up to the current one (Paris time), oldest first."""
    local = in_paris(now)
    index = local.year * 12 + local.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - count + 1, index + 1)]


def month_label(first_day: date) -> str:
    return f"{MONTH_NAMES[first_day.month - 1]} {first_day.year}"


def series(key: str, counts: Counts, months: list[date]) -> Series:
    before = sum(count for month, count in counts.by_month.items() if month < months[0])
    rows, running = [], before
    for month in months:
        new = counts.by_month.get(month, 0)
        running += new
        rows.append(Month(month=month.strftime("%Y-%m"), label=month_label(month), new=new, cumulative=running))
    return Series(key=key, total=running, months=rows)


def rate(measure: Measure, count: int, population: int) -> float | None:
    if not population or (measure.people and count < SMALL_COUNT):
        return None
    return per_thousand(count, population)


def departments(populations: Mapping[str, tuple[str, int]], counts: Mapping[str, Counts]) -> list[DepartmentRow]:
    rows = []
    for code, (name, population) in sorted(populations.items()):
        volunteers, missions, applications, organisations = (counts[m.key].by_department.get(code, 0)
                                                             for m in MEASURES)
        rows.append(DepartmentRow(
            code=code, name=name, population=population, volunteers=volunteers, applications=applications,
            missions=missions, organisations=organisations,
            volunteers_per_thousand=rate(BY_KEY["volunteers"], volunteers, population),
            applications_per_thousand=rate(BY_KEY["applications"], applications, population),
            missions_per_thousand=rate(BY_KEY["missions"], missions, population),
            organisations_per_thousand=rate(BY_KEY["organisations"], organisations, population),
        ))
    return rows


def volunteers_map(rows: list[DepartmentRow]) -> Any:
    return choropleth({row.code: row.volunteers_per_thousand for row in rows},
                      caption="Bénévoles inscrits, par département de résidence",
                      unit="bénévoles pour 1 000 habitants", shown=lambda value: decimal(value, 2), resolution=0.01,
                      no_data=f"moins de {SMALL_COUNT} bénévoles : taux non publié")


async def compute(session: AsyncSession, *, now: datetime) -> Statistics:
    """Every figure, from one snapshot of the database (the counts agree with each other)."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    counts = {"volunteers": await volunteers(session), "missions": await missions(session),
              "applications": await applications(session), "organisations": await organisations(session)}
    months = last_months(now)
    rows = departments(await department_populations(session), counts)
    return Statistics(computed_at=now.isoformat(), series=[series(m.key, counts[m.key], months) for m in MEASURES],
                      departments=rows, volunteers_map=volunteers_map(rows))
