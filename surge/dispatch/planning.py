"""The planning job's body: reads the pool and the target missions of a run, asks the engine for a plan and keeps
it, with the preview the coordinator reviews before committing (per mission, per department, who stays home and
why). Only this module imports the engine, and only inside the job."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.applications.capacity import Places
from app.applications.models import Application
from app.applications.service import taken_places
from app.applications.statuses import ApplicationStatus as Status
from app.db.base import unit_of_work
from app.geo.models import Commune, Department
from app.missions.models import Mission, MissionAddress
from app.organisations.models import Organisation
from app.volunteers import age
from app.volunteers.models import Volunteer
from surge.dispatch.models import DispatchRun
from surge.dispatch.proposals import seed_engaged
from surge.dispatch.runs import Parameters
from surge.emergencies.models import Emergency

UNASSIGNED_SAMPLE = 300  # the preview lists this many people who stay home; the counts cover everyone


@dataclass(frozen=True, slots=True)
class Target:
    id: int
    title: str
    priority: bool
    domain: str
    places: int
    latitude: float
    longitude: float
    department: str
    department_name: str
    open_to_minors: bool
    start_date: date | None


def engaged() -> ColumnElement[bool]:
    """The volunteer holds a proposal, or a confirmed one, from a dispatch of an emergency still live."""
    return exists().where(
        Application.volunteer_id == Volunteer.id,
        Application.dispatch_run_id.is_not(None),
        Application.status.in_((Status.PROPOSED, Status.ACCEPTED)),
        DispatchRun.id == Application.dispatch_run_id,
        Emergency.id == DispatchRun.emergency_id,
        Emergency.status == "live",
    )


async def _pool(session: AsyncSession, emergency: Emergency, parameters: Parameters, born_by: date | None
                ) -> list[Any]:
    """`born_by`: when every target is closed to minors, those too young for all of them (still under 18 on the
    latest day a target checks) stay out."""
    by_emergency = Volunteer.emergency_slug == emergency.slug
    departments = list(emergency.departments)
    by_departments = Commune.department_code.in_(departments) if departments else true()  # national: everyone
    chosen = {"urgence": by_emergency, "departements": by_departments,
              "les-deux": or_(by_emergency, by_departments)}[parameters.pool]
    query = (
        select(Volunteer.id, Commune.latitude, Commune.longitude, Volunteer.domains, Volunteer.availability,
               Volunteer.birth_date)
        .join(Commune, Commune.code == Volunteer.commune_code)
        .where(chosen, Commune.latitude.is_not(None), Commune.longitude.is_not(None), ~engaged(),
               ~Volunteer.unconfirmed,  # held back until their e-mail is confirmed
               Volunteer.anonymised_at.is_(None))  # anonymised after years of inactivity: nobody to send
        .order_by(Volunteer.id)
    )
    if parameters.domains:
        query = query.where(Volunteer.domains.overlap(parameters.domains))
    if born_by is not None:
        query = query.where(Volunteer.birth_date <= born_by)
    return list(await session.execute(query))


async def _targets(session: AsyncSession, slug: str, mission_ids: list[int]) -> list[Target]:
    first_address = (select(MissionAddress.mission_id, MissionAddress.latitude, MissionAddress.longitude,
                            MissionAddress.commune_code)
                     .distinct(MissionAddress.mission_id)
                     .order_by(MissionAddress.mission_id, MissionAddress.id).subquery())
    rows = await session.execute(
        select(Mission.id, Mission.title, Mission.priority, Mission.domain, Mission.places,
               first_address.c.latitude, first_address.c.longitude, Department.code, Department.name,
               Mission.open_to_minors, Mission.start_date)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .join(first_address, first_address.c.mission_id == Mission.id)
        .join(Commune, Commune.code == first_address.c.commune_code)
        .join(Department, Department.code == Commune.department_code)
        .where(Mission.id.in_(mission_ids), Mission.emergency_slug == slug, Mission.status == "published",
               Organisation.status == "validated", Mission.partner_id.is_(None))  # partners' missions apply elsewhere
        .order_by(Mission.priority.desc(), Mission.id)
    )
    return [Target(*row) for row in rows]


async def _applied(session: AsyncSession, mission_ids: list[int]) -> dict[int, set[int]]:
    """Volunteer → the target missions they have an application on, in any status: the commit proposes nobody on a
    mission they applied to, left or were declined from (lua/propose.lua), so the plan does not count them there."""
    found: dict[int, set[int]] = {}
    rows = await session.execute(
        select(Application.volunteer_id, Application.mission_id).where(Application.mission_id.in_(mission_ids))
    )
    for volunteer_id, mission_id in rows:
        found.setdefault(volunteer_id, set()).add(mission_id)
    return found


async def plan_run(engine: AsyncEngine, places: Places, run_id: int) -> dict[str, int]:
    from surge.dispatch.engine import Mission as Need
    from surge.dispatch.engine import Volunteer as Candidate
    from surge.dispatch.engine import plan_dispatch

    async with unit_of_work(engine) as session:
        run = await session.get(DispatchRun, run_id)
        if run is None or run.status != "planning":
            return {"planned": 0}
        emergency = await session.get(Emergency, run.emergency_id)
        assert emergency is not None  # the run's foreign key cascades
        parameters = Parameters.from_json(run.parameters)
        targets = await _targets(session, emergency.slug, parameters.mission_ids)
        # The age rule per mission (the commit checks it again, as it stands then: proposals.py).
        today = age.today()
        checks = {t.id: None if t.open_to_minors else age.checked_on(t.start_date, today) for t in targets}
        closed_to_minors = [day for day in checks.values() if day is not None]
        everywhere = bool(targets) and len(closed_to_minors) == len(targets)
        pool = await _pool(session, emergency, parameters, age.born_by(max(closed_to_minors)) if everywhere else None)
        applied = await _applied(session, [t.id for t in targets])
    # Proposed moments ago by another run, not drained yet: Redis knows them, PostgreSQL not yet.
    if not await places.engaged_seeded():
        await seed_engaged(engine, places)
    engaged_now = await places.engaged_among([row[0] for row in pool], now=time.time())
    pool = [row for row in pool if row[0] not in engaged_now]
    # Open places as Redis holds them now: applications that arrived since the missions were read count.
    open_places = {t.id: max(0, t.places - await taken_places(places, engine, t.id)) for t in targets}
    # Applications still queued for PostgreSQL: Redis (seeded just above) holds every application of the mission.
    for t in targets:
        for volunteer_id in await places.mission_statuses(t.id):
            applied.setdefault(volunteer_id, set()).add(t.id)
    wanted = set(parameters.availability)
    candidates = [
        Candidate(id=volunteer_id, lat=lat, lon=lon, domains=frozenset(domains),
                  available=not wanted or availability in wanted or availability == "anytime",
                  adult_on=age.adult_on(birth_date), applied=frozenset(applied.get(volunteer_id, ())))
        for volunteer_id, lat, lon, domains, availability, birth_date in pool
    ]
    needs = [Need(id=t.id, lat=t.latitude, lon=t.longitude, places=open_places[t.id], priority=t.priority,
                  domain=t.domain, age_checked_on=checks[t.id]) for t in targets]
    plan = plan_dispatch(candidates, needs, max_km=parameters.max_km)

    proposed = Counter(a.mission_id for a in plan.assignments)
    departments: dict[str, dict[str, Any]] = {}
    for t in targets:
        department = departments.setdefault(t.department, {"code": t.department, "name": t.department_name,
                                                           "missions": 0, "open": 0, "proposed": 0})
        department["missions"] += 1
        department["open"] += open_places[t.id]
        department["proposed"] += proposed[t.id]
    reasons = Counter(u.reason for u in plan.unassigned)
    preview = {
        "missions": [{"id": t.id, "title": t.title, "priority": t.priority, "department": t.department,
                      "places": t.places, "open": open_places[t.id], "proposed": proposed[t.id]} for t in targets],
        "departments": sorted(departments.values(), key=lambda d: d["code"]),
        "reasons": dict(reasons.most_common()),
        "unassigned": [{"volunteer_id": u.volunteer_id, "reason": u.reason}
                       for u in plan.unassigned[:UNASSIGNED_SAMPLE]],
    }
    counts = {
        "pool": len(candidates),
        "engaged_left_out": len(engaged_now),
        "already_applied": sum(bool(c.applied) for c in candidates),
        "available": sum(c.available for c in candidates),
        "missions": len(targets),
        "open_places": sum(open_places.values()),
        "priority_open_places": sum(open_places[t.id] for t in targets if t.priority),
        "planned": plan.places_filled,
        "priority_planned": plan.priority_places_filled,
        "unassigned": len(plan.unassigned),
        "total_km": round(plan.total_km, 1),
    }
    async with unit_of_work(engine) as session:
        await session.execute(
            update(DispatchRun).where(DispatchRun.id == run_id, DispatchRun.status == "planning").values(
                status="planned", planned_at=datetime.now(UTC), preview=preview, counts=counts,
                planned_missions=[int(a.mission_id) for a in plan.assignments],  # type: ignore[call-overload]
                planned_volunteers=[int(a.volunteer_id) for a in plan.assignments],  # type: ignore[call-overload]
            )
        )
    return {"planned": plan.places_filled}


async def mark_failed(engine: AsyncEngine, run_id: int) -> None:
    async with unit_of_work(engine) as session:
        await session.execute(
            update(DispatchRun).where(DispatchRun.id == run_id, DispatchRun.status == "planning")
            .values(status="failed", error="Le calcul du plan a échoué. Relancez une mobilisation ; si l'échec se "
                                           "répète, prévenez l'équipe technique.")
        )
