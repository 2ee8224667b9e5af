"""Where a mission belongs, for moderation, priority and emergencies: the departments of its addresses in the form's
order, or its organisation's department when it has none (a remote mission). Its department is the first of them.
The rule is `choose`; everything else feeds it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.models import Commune
from app.missions.models import Mission, MissionAddress
from app.organisations.models import Organisation


def choose(address_departments: Sequence[str], organisation_department: str) -> list[str]:
    return list(dict.fromkeys(address_departments)) or [organisation_department]


async def organisation_department(session: AsyncSession, organisation_id: int) -> str | None:
    return await session.scalar(
        select(Commune.department_code).join(Organisation, Organisation.commune_code == Commune.code)
        .where(Organisation.id == organisation_id)
    )


async def departments_for(session: AsyncSession, organisation_id: int, commune_codes: Sequence[str]) -> list[str]:
    """For a mission not written yet: its communes (in the form's order) and its organisation."""
    known = dict((await session.execute(
        select(Commune.code, Commune.department_code).where(Commune.code.in_(commune_codes))
    )).all()) if commune_codes else {}
    return choose([known[code] for code in commune_codes if code in known],
                  await organisation_department(session, organisation_id) or "")


async def departments_of(session: AsyncSession, mission_ids: Sequence[int]) -> dict[int, list[str]]:
    """For missions as PostgreSQL holds them, in two indexed queries whatever their number."""
    if not mission_ids:
        return {}
    addresses = await session.execute(
        select(MissionAddress.mission_id, Commune.department_code)
        .join(Commune, Commune.code == MissionAddress.commune_code)
        .where(MissionAddress.mission_id.in_(mission_ids)).order_by(MissionAddress.id)
    )
    found: dict[int, list[str]] = {mission_id: [] for mission_id in mission_ids}
    for mission_id, department in addresses:
        found[mission_id].append(department)
    organisations = dict((await session.execute(
        select(Mission.id, Commune.department_code).join(Organisation, Organisation.id == Mission.organisation_id)
        .join(Commune, Commune.code == Organisation.commune_code).where(Mission.id.in_(mission_ids))
    )).all())
    return {mission_id: choose(found[mission_id], organisations.get(mission_id, "")) for mission_id in found}


async def department_of(session: AsyncSession, mission_id: int) -> str:
    return (await departments_of(session, [mission_id]))[mission_id][0]
