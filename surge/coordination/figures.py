"""The dashboard's SQL, one function per figure. Not a surge path: the dashboard caches each emergency's figures in
Redis for a few seconds (dashboard.py), so however many coordinators poll, these run once per emergency per period."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.applications.capacity import HOLDING
from app.applications.models import Application
from app.geo.models import Commune, Department
from app.missions.models import Mission, MissionAddress
from app.missions.service import ONLINE_STATUSES
from app.volunteers.models import Volunteer
from surge.dispatch.models import DispatchRun

MINUTES = 60
NATIONAL_TOP = 10  # a national emergency shows its best-covered departments, not all hundred
RECENT_RUNS = 5


async def signups_per_minute(session: AsyncSession, slug: str, *, now: datetime) -> tuple[int, list[int]]:
    """Saved sign-ups of the emergency by the minute they were accepted, over the last MINUTES minutes (the current
    one last): (epoch minute of the first bucket, counts)."""
    last = int(now.timestamp()) // 60
    first = last - MINUTES + 1
    minute = func.floor(func.extract("epoch", Volunteer.accepted_at) / 60)
    rows = await session.execute(
        select(minute, func.count())
        .where(Volunteer.emergency_slug == slug, Volunteer.accepted_at >= datetime.fromtimestamp(first * 60, UTC))
        .group_by(minute)
    )
    counts = [0] * MINUTES
    for bucket, count in rows:
        index = int(bucket) - first
        if 0 <= index < MINUTES:
            counts[index] = int(count)
    return first, counts


@dataclass(frozen=True, slots=True)
class DepartmentCoverage:
    code: str
    name: str
    population: int  # sum of its communes' municipal population
    volunteers: int  # of this emergency, living there
    places_filled: int  # on this emergency's online missions located there

    def per_thousand(self, count: int) -> float:
        return per_thousand(count, self.population)


def per_thousand(count: int, population: int) -> float:
    return round(count * 1000 / population, 2) if population else 0.0


async def department_populations(session: AsyncSession,
                                 departments: Collection[str] = ()) -> dict[str, tuple[str, int]]:
    """Code → (name, population: the sum of its communes' municipal population), for `departments` (all when empty)."""
    query = select(Commune.department_code, Department.name, func.sum(Commune.population)).join(
        Department, Department.code == Commune.department_code
    ).group_by(Commune.department_code, Department.name)
    if departments:
        query = query.where(Commune.department_code.in_(list(departments)))
    return {code: (name, int(total or 0)) for code, name, total in await session.execute(query)}


async def coverage(session: AsyncSession, slug: str, departments: list[str]) -> list[DepartmentCoverage]:
    """Every department of the scope, in order; for a national emergency (empty scope), the NATIONAL_TOP departments
    with the most volunteers per 1,000 inhabitants."""
    volunteers_query = (
        select(Commune.department_code, func.count()).select_from(Volunteer)
        .join(Commune, Commune.code == Volunteer.commune_code)
        .where(Volunteer.emergency_slug == slug).group_by(Commune.department_code)
    )
    if departments:
        volunteers_query = volunteers_query.where(Commune.department_code.in_(departments))
    populations = await department_populations(session, departments)
    volunteers = {code: int(count) for code, count in await session.execute(volunteers_query)}
    filled = await _places_filled_by_department(session, slug)
    rows = [DepartmentCoverage(code, name, population, int(volunteers.get(code, 0)), filled.get(code, 0))
            for code, (name, population) in populations.items()]
    if departments:
        order = {code: index for index, code in enumerate(departments)}
        return sorted(rows, key=lambda row: order.get(row.code, len(order)))
    rows = [row for row in rows if row.volunteers or row.places_filled]
    rows.sort(key=lambda row: (-row.per_thousand(row.volunteers), -row.per_thousand(row.places_filled), row.code))
    return rows[:NATIONAL_TOP]


async def _places_filled_by_department(session: AsyncSession, slug: str) -> dict[str, int]:
    """Places held (as counters() counts them) on online missions, by the department of the mission's first address;
    missions done from home have no address and count nowhere."""
    held = (
        select(Application.mission_id, func.count().label("held"))
        .where(Application.status.in_(HOLDING)).group_by(Application.mission_id).subquery()
    )
    first_address = (
        select(MissionAddress.mission_id, MissionAddress.commune_code).ext(distinct_on(MissionAddress.mission_id))
        .order_by(MissionAddress.mission_id, MissionAddress.id).subquery()
    )
    rows = await session.execute(
        select(Commune.department_code, func.sum(func.least(held.c.held, Mission.places)))
        .select_from(Mission)
        .join(held, held.c.mission_id == Mission.id)
        .join(first_address, first_address.c.mission_id == Mission.id)
        .join(Commune, Commune.code == first_address.c.commune_code)
        .where(Mission.emergency_slug == slug, Mission.status.in_(ONLINE_STATUSES))
        .group_by(Commune.department_code)
    )
    return {code: int(total or 0) for code, total in rows}


@dataclass(frozen=True, slots=True)
class RunOutcome:
    id: int
    status: str
    created_at: datetime
    planned: int  # places the plan filled
    proposed: int  # proposals the commit made
    answers: dict[str, int]  # the run's proposals by their current status


async def dispatch_runs(session: AsyncSession, emergency_id: int) -> tuple[dict[str, int], list[RunOutcome]]:
    """How many runs the emergency had in each status, and the RECENT_RUNS latest with what became of them."""
    by_status = {status: int(count) for status, count in await session.execute(
        select(DispatchRun.status, func.count()).where(DispatchRun.emergency_id == emergency_id)
        .group_by(DispatchRun.status)
    )}
    runs = (await session.execute(
        select(DispatchRun.id, DispatchRun.status, DispatchRun.created_at, DispatchRun.counts)
        .where(DispatchRun.emergency_id == emergency_id).order_by(DispatchRun.id.desc()).limit(RECENT_RUNS)
    )).all()
    answers: dict[int, Counter[str]] = {run_id: Counter() for run_id, *_ in runs}
    if answers:
        rows = await session.execute(
            select(Application.dispatch_run_id, Application.status, func.count())
            .where(Application.dispatch_run_id.in_(list(answers))).group_by(Application.dispatch_run_id,
                                                                           Application.status)
        )
        for run_id, status, count in rows:
            if run_id is not None:
                answers[run_id][status] += int(count)
    outcomes = [
        RunOutcome(run_id, status, created_at, int((counts or {}).get("planned", 0)),
                   int((counts or {}).get("proposed", 0)), dict(answers[run_id]))
        for run_id, status, created_at, counts in runs
    ]
    return by_status, outcomes
