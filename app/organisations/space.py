""""Mes structures": the organisations a person manages, each with its missions, their places and the applications
waiting for an answer."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.applications.capacity import Places
from app.applications.models import Application
from app.applications.statuses import ApplicationStatus
from app.missions import service as missions
from app.missions.models import Mission
from app.missions.schemas import STATUS_LABELS
from app.organisations import service as organisations_service
from app.organisations.schemas import OrganisationRead
from app.organisations.service import EDITABLE, slugify

MISSIONS_SHOWN = 100  # per organisation, the most recent first


@dataclass(frozen=True, slots=True)
class ManagedMission:
    id: int
    title: str
    path: str
    status: str
    status_label: str
    places: int
    taken: int
    pending: int  # applications waiting for the organisation's answer


@dataclass(frozen=True, slots=True)
class ManagedOrganisation:
    organisation: OrganisationRead
    editable: bool
    missions: list[ManagedMission]
    more_missions: bool


async def _pending(session: AsyncSession, mission_ids: list[int]) -> dict[int, int]:
    if not mission_ids:
        return {}
    rows = await session.execute(
        select(Application.mission_id, func.count())
        .where(Application.mission_id.in_(mission_ids), Application.status == ApplicationStatus.PENDING)
        .group_by(Application.mission_id)
    )
    return dict(rows.all())


async def _live_taken(places: Places, mission_ids: list[int], saved: dict[int, int]) -> dict[int, int]:
    """Places held as Redis counts them now where it knows the mission, else as PostgreSQL has them."""
    taken = dict(saved)
    for mission_id in mission_ids:
        live = await places.taken(mission_id)
        if live is not None:
            taken[mission_id] = live
    return taken


async def managed_by(session: AsyncSession, places: Places, user_id: int) -> list[ManagedOrganisation]:
    organisations = await organisations_service.managed(session, user_id)
    if not organisations:
        return []
    ranked = (
        select(Mission.id, Mission.organisation_id, Mission.title, Mission.status, Mission.places,
               func.row_number().over(partition_by=Mission.organisation_id,
                                      order_by=(Mission.created_at.desc(), Mission.id.desc())).label("rank"))
        .where(Mission.organisation_id.in_([organisation.id for organisation in organisations]))
        .subquery()
    )
    mission_rows = (await session.execute(
        select(ranked).where(ranked.c.rank <= MISSIONS_SHOWN + 1).order_by(ranked.c.rank)
    )).all()
    shown = [row for row in mission_rows if row.rank <= MISSIONS_SHOWN]
    ids = [row.id for row in shown]
    taken = await _live_taken(places, ids, await missions.taken(session, ids))
    pending = await _pending(session, ids)
    by_organisation: dict[int, list[ManagedMission]] = {}
    for row in shown:
        by_organisation.setdefault(row.organisation_id, []).append(ManagedMission(
            id=row.id, title=row.title, path=f"/missions/{row.id}-{slugify(row.title)}", status=row.status,
            status_label=STATUS_LABELS[row.status], places=row.places, taken=taken.get(row.id, 0),
            pending=pending.get(row.id, 0),
        ))
    more = {row.organisation_id for row in mission_rows if row.rank > MISSIONS_SHOWN}
    return [ManagedOrganisation(organisation, organisation.status in EDITABLE, by_organisation.get(organisation.id, []),
                                organisation.id in more) for organisation in organisations]
