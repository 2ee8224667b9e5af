"""The volunteer's own profile: read it into the form, save what the form changed.

The volunteer row is found through the signed-in user's address, not the session's `volunteer_id`: a person who
signed in before their sign-up was drained has no id in the session, yet their row exists now."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.volunteers import age
from app.volunteers.models import Volunteer
from app.volunteers.validation import ValidProfile

EDITABLE = tuple(ValidProfile.__dataclass_fields__)


class NotAVolunteer(Exception):
    """Signed in, but this address has no volunteer row (never signed up, or not drained yet)."""


def _of_user(user_id: int) -> Any:
    return select(User.email_normalized).where(User.id == user_id).scalar_subquery()


async def volunteer_of(session: AsyncSession, user_id: int) -> Volunteer:
    volunteer = await session.scalar(select(Volunteer).where(Volunteer.email_normalized == _of_user(user_id)))
    if volunteer is None:
        raise NotAVolunteer
    return volunteer


async def volunteer_id_of(session: AsyncSession, user_id: int) -> int | None:
    """The id of the volunteer row of this user's address, if they signed up (and it has been saved)."""
    return await session.scalar(select(Volunteer.id).where(Volunteer.email_normalized == _of_user(user_id)))


async def volunteer_and_adult_on(session: AsyncSession, user_id: int) -> tuple[int, date] | None:
    """The volunteer row's id and 18th birthday, for a session opened before they were kept in it."""
    row = (await session.execute(
        select(Volunteer.id, Volunteer.birth_date).where(Volunteer.email_normalized == _of_user(user_id))
    )).first()
    return None if row is None else (row[0], age.adult_on(row[1]))


async def is_volunteer(session: AsyncSession, user_id: int) -> bool:
    return await volunteer_id_of(session, user_id) is not None


def form_values(volunteer: Volunteer) -> dict[str, Any]:
    """The form as the volunteer's row fills it (skills as the comma-separated text the form edits)."""
    values: dict[str, Any] = {name: getattr(volunteer, name) for name in EDITABLE}
    values["phone"] = volunteer.phone or ""
    values["skills"] = ", ".join(volunteer.skills)
    return values


async def update_profile(session: AsyncSession, user_id: int, profile: ValidProfile) -> None:
    changes = {name: getattr(profile, name) for name in EDITABLE}
    result = await session.execute(
        update(Volunteer).where(Volunteer.email_normalized == _of_user(user_id))
        .values(**changes, last_activity_at=func.now())  # activity: restarts the inactivity period
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotAVolunteer
