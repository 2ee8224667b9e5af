"""Deleting one's own account for real: the volunteer, their applications, the user and its roles, and every copy of
their sign-up still queued in Redis. The rows go in the request's transaction; the caller ends the sessions and,
after the commit, asks for the drain of the withdrawals."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.accounts.schemas import SignedIn
from app.applications.models import Application
from app.applications.service import withdraw_everywhere
from app.state import WebState
from app.volunteers.erasure import erase_from_queue
from app.volunteers.models import Volunteer
from app.volunteers.validation import normalize_email


async def delete_account(web: WebState, session: AsyncSession, account: SignedIn) -> bool:
    """Returns whether the applications need a drain. Idempotent: a second submit (another tab) finds nothing left
    and deletes nothing."""
    email_normalized = await session.scalar(select(User.email_normalized).where(User.id == account.user_id))
    if email_normalized is None:
        email_normalized = normalize_email(account.email)
    volunteer_ids = list(await session.scalars(
        select(Volunteer.id).where(Volunteer.email_normalized == email_normalized)
    ))
    drain = False
    for volunteer_id in volunteer_ids:
        # Places first, so the wait-listed move up now rather than behind a ghost holder.
        mission_ids = set(await session.scalars(
            select(Application.mission_id).where(Application.volunteer_id == volunteer_id)
        )) | await web.places.queued_missions(volunteer_id)  # applied moments ago: not drained yet
        drain = await withdraw_everywhere(web.places, web.engine, volunteer_id, mission_ids) or drain
    # Before the rows: once no copy is queued or in flight, no drain can write the volunteer back after the delete.
    await erase_from_queue(web.signups, email_normalized, lease_seconds=web.settings.drain_lease_seconds)
    # By address, not by id: it also catches a row a drain committed while the queue was being erased.
    await session.execute(delete(Volunteer).where(Volunteer.email_normalized == email_normalized))
    await session.execute(delete(User).where(User.email_normalized == email_normalized))
    return drain
