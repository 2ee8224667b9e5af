"""A manager's edit that closes a mission to minors (or moves its start earlier while closed) is refused while people
under 18 on the new day of the age check hold open applications: they must be declined first. Ages are checked on
the day as it is in France."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.applications.capacity import Places
from app.applications.models import Application
from app.applications.statuses import ApplicationStatus
from app.missions.models import Mission
from app.missions.validation import MissionInvalid, ValidMission
from app.volunteers import age
from app.volunteers.models import Volunteer

OPEN = (ApplicationStatus.PENDING, ApplicationStatus.WAITLISTED, ApplicationStatus.PROPOSED,
        ApplicationStatus.ACCEPTED)


async def under_age(session: AsyncSession, places: Places, mission_id: int, day: date) -> int:
    """Open applications to the mission from people not yet 18 on `day`: as Redis holds them when it knows the
    mission (applications still in the drain's backlog included), else as PostgreSQL does."""
    statuses = await places.mission_statuses(mission_id)
    if not statuses:  # Redis does not know the mission (or it has no application at all)
        return await session.scalar(
            select(func.count()).select_from(Application).join(Volunteer, Volunteer.id == Application.volunteer_id)
            .where(Application.mission_id == mission_id, Application.status.in_(OPEN),
                   Volunteer.birth_date > age.born_by(day))
        ) or 0
    applicants = [volunteer_id for volunteer_id, status in statuses.items() if status in OPEN]
    if not applicants:
        return 0
    return await session.scalar(
        select(func.count()).select_from(Volunteer)
        .where(Volunteer.id.in_(applicants), Volunteer.birth_date > age.born_by(day))
    ) or 0


async def check_edit(session: AsyncSession, places: Places, mission: Mission, valid: ValidMission, *,
                     today: date) -> None:
    """Before the edit is written: `mission` as it is, `valid` as the manager wants it."""
    if valid.open_to_minors:
        return
    day = age.checked_on(valid.start_date, today)
    if not mission.open_to_minors:
        if day >= age.checked_on(mission.start_date, today):
            return  # nobody the mission took can have become too young
        field = "start_date"
    else:
        field = "open_to_minors"
    count = await under_age(session, places, mission.id, day)
    if count:
        who = ("1 candidature en cours vient d'une personne qui n'aura" if count == 1
               else f"{count} candidatures en cours viennent de personnes qui n'auront")
        raise MissionInvalid({field: (
            f"{who} pas 18 ans le {day.strftime('%d/%m/%Y')}. Refusez d'abord ces candidatures depuis la page des "
            "candidatures de la mission, puis enregistrez à nouveau cette modification."
        )})
