"""The public side of an organisation's showcase: its online missions, a page at a time, most recent first, in
the groups the page already shows ("En ligne", "Complètes")."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.missions.models import Mission
from app.missions.schemas import STATUS_LABELS
from app.organisations.service import slugify
from app.organisations.space import GROUPS, PUBLIC_GROUPS, ManagedMission, MissionGroup

PER_PAGE = 20
MAX_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    pages: int
    total: int


def page_number(raw: str | None) -> int | None:
    """None for anything but a page number in range (the caller answers 404)."""
    if raw is None:
        return 1
    if raw.isascii() and raw.isdecimal() and len(raw) <= 4 and 1 <= int(raw) <= MAX_PAGE:
        return int(raw)
    return None


async def online_missions(session: AsyncSession, organisation_id: int, page: int) -> tuple[list[MissionGroup], Pager]:
    online = (Mission.organisation_id == organisation_id) & Mission.status.in_(PUBLIC_GROUPS)
    total = int(await session.scalar(select(func.count()).select_from(Mission).where(online)) or 0)
    rows = (await session.execute(
        select(Mission.id, Mission.title, Mission.status, Mission.places).where(online)
        .order_by(Mission.created_at.desc(), Mission.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE)
    )).all()
    missions = [ManagedMission(id=row.id, title=row.title, path=f"/missions/{row.id}-{slugify(row.title)}",
                               status=row.status, status_label=STATUS_LABELS[row.status], places=row.places, taken=0,
                               pending=0) for row in rows]
    groups = [MissionGroup(status, GROUPS[status], [mission for mission in missions if mission.status == status])
              for status in PUBLIC_GROUPS]
    return [group for group in groups if group.missions], Pager(page, max(1, math.ceil(total / PER_PAGE)), total)
