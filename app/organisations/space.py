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
SPACE_MISSIONS_SHOWN = 10  # on "Mon espace", which links to the rest


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


async def _missions(session: AsyncSession, places: Places, organisation_ids: list[int], *, shown: int,
                    statuses: tuple[str, ...] | None = None,
                    count_pending: bool = True) -> tuple[dict[int, list[ManagedMission]], set[int]]:
    """The `shown` most recent missions of each organisation (in these statuses, if given), and the organisations
    that have more. Without `count_pending` (a page only managers see them on), every `pending` is 0."""
    ranked_query = (
        select(Mission.id, Mission.organisation_id, Mission.title, Mission.status, Mission.places,
               func.row_number().over(partition_by=Mission.organisation_id,
                                      order_by=(Mission.created_at.desc(), Mission.id.desc())).label("rank"))
        .where(Mission.organisation_id.in_(organisation_ids))
    )
    if statuses is not None:
        ranked_query = ranked_query.where(Mission.status.in_(statuses))
    ranked = ranked_query.subquery()
    mission_rows = (await session.execute(
        select(ranked).where(ranked.c.rank <= shown + 1).order_by(ranked.c.rank)
    )).all()
    kept = [row for row in mission_rows if row.rank <= shown]
    ids = [row.id for row in kept]
    taken = await _live_taken(places, ids, await missions.taken(session, ids))
    pending = await _pending(session, ids) if count_pending else {}
    by_organisation: dict[int, list[ManagedMission]] = {}
    for row in kept:
        by_organisation.setdefault(row.organisation_id, []).append(ManagedMission(
            id=row.id, title=row.title, path=f"/missions/{row.id}-{slugify(row.title)}", status=row.status,
            status_label=STATUS_LABELS[row.status], places=row.places, taken=taken.get(row.id, 0),
            pending=pending.get(row.id, 0),
        ))
    return by_organisation, {row.organisation_id for row in mission_rows if row.rank > shown}


async def managed_by(session: AsyncSession, places: Places, user_id: int, *,
                     shown: int = MISSIONS_SHOWN) -> list[ManagedOrganisation]:
    organisations = await organisations_service.managed(session, user_id)
    if not organisations:
        return []
    by_organisation, more = await _missions(session, places, [organisation.id for organisation in organisations],
                                            shown=shown)
    return [ManagedOrganisation(organisation, organisation.status in EDITABLE, by_organisation.get(organisation.id, []),
                                organisation.id in more) for organisation in organisations]


@dataclass(frozen=True, slots=True)
class MissionGroup:
    status: str
    label: str  # the group's French heading ("En ligne", "Brouillons")
    missions: list[ManagedMission]


# The organisation page's groups, in this order; the public sees the online ones only.
GROUPS = {"published": "En ligne", "full": "Complètes", "awaiting_validation": "En attente de validation",
          "draft": "Brouillons", "suspended": "Suspendues", "finished": "Terminées", "cancelled": "Annulées"}
PUBLIC_GROUPS = ("published", "full")


async def missions_by_status(session: AsyncSession, places: Places, organisation_id: int, *,
                             manager: bool) -> tuple[list[MissionGroup], bool]:
    """The organisation's missions grouped by status (its managers see every status), and whether some are not
    shown (the most recent ones are)."""
    statuses = tuple(GROUPS) if manager else PUBLIC_GROUPS
    by_organisation, more = await _missions(session, places, [organisation_id], shown=MISSIONS_SHOWN,
                                            statuses=statuses, count_pending=manager)
    found = by_organisation.get(organisation_id, [])
    groups = [MissionGroup(status, GROUPS[status], [mission for mission in found if mission.status == status])
              for status in statuses]
    return [group for group in groups if group.missions], organisation_id in more
