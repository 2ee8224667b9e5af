"""Where a manager's "Publier" takes a draft: online at once when its text comes from a validated template or its
organisation is trusted, to the referents of its department otherwise."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.missions.models import Mission, MissionModeration, MissionTemplate


async def trusted(session: AsyncSession, organisation_id: int, *, needed: int) -> bool:
    """`needed` missions validated and none refused in the last 12 months (0: nobody is trusted this way)."""
    if needed <= 0:
        return False
    validated, refused = (await session.execute(
        select(func.count().filter(MissionModeration.decision == "validate"),
               func.count().filter(MissionModeration.decision == "refuse"))
        .where(MissionModeration.organisation_id == organisation_id,
               MissionModeration.decided_at >= func.now() - func.make_interval(0, 12))
    )).one()
    return validated >= needed and refused == 0


async def target(session: AsyncSession, mission: Mission, *, trusted_after: int) -> str:
    if mission.template_id is not None and await session.scalar(
        select(MissionTemplate.status).where(MissionTemplate.id == mission.template_id)
    ) == "validated":
        return "published"
    if await trusted(session, mission.organisation_id, needed=trusted_after):
        return "published"
    return "awaiting_validation"
