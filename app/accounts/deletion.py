"""Deleting one's own account for real: the volunteer, their applications, the user and its roles, their dead letters
in Redis, and a tombstone so that no copy of their sign-up still queued can write them back
(app/volunteers/erasure.py). The rows go in the request's transaction; the caller ends the sessions.

An organisation never ends without a manager: the only manager of one cannot delete their account before handing it
over (a co-manager invited at /organisations/{id}/gestionnaires); where others remain, the deletion goes ahead and
their management row goes with the user."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.accounts.schemas import SignedIn
from app.applications.models import Application
from app.applications.service import withdraw_everywhere
from app.db.after_commit import Clients, after_commit
from app.organisations.managers import Managed, solely_managed
from app.organisations.models import ManagerInvitation
from app.roles.service import admins_locked
from app.state import WebState
from app.volunteers.erasure import record_erasure
from app.volunteers.models import Volunteer
from app.volunteers.validation import normalize_email
from queues import enqueue


class LastAdmin(Exception):
    """The only administrator: nobody would be left to appoint the others."""


class SoleManager(Exception):
    """The person is the only manager of these organisations: the account stays until they hand them over."""

    def __init__(self, organisations: list[Managed]) -> None:
        super().__init__("the only manager of an organisation")
        self.organisations = organisations


async def delete_account(web: WebState, session: AsyncSession, account: SignedIn) -> None:
    """Idempotent: a second submit (another tab) finds nothing left and deletes nothing. The drain of the places
    given back is asked for once the deletion has committed. Raises `SoleManager` or `LastAdmin` before touching
    anything."""
    # First, and locked until the commit: a co-manager leaving meanwhile waits, then finds this one gone.
    sole = await solely_managed(session, account.user_id, lock=True)
    if sole:
        raise SoleManager(sole)
    if await admins_locked(session) == {account.user_id}:
        raise LastAdmin
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
    # Stamped before the dedupe mark goes: a sign-up queued from then on is a later one, and is let through.
    erased_at = datetime.now(UTC)
    await web.signups.forget_person(email_normalized)
    for volunteer_id in volunteer_ids:
        await web.places.queue.forget_owner(f"v{volunteer_id}")

    async def forget_dead_letters(_: Clients) -> None:
        # Again once committed: a drain transaction this one waited for may have buried a copy meanwhile.
        await web.signups.forget_owner(web.signups.signup_keys.owner(email_normalized))
        for volunteer_id in volunteer_ids:
            await web.places.queue.forget_owner(f"v{volunteer_id}")

    after_commit(session, forget_dead_letters)
    # Last, so that drains wait on the tombstone's lock for as short a time as possible.
    await record_erasure(session, web.settings.secret_key.reveal(), email_normalized, erased_at)
    # By address, not by id: it also catches a row a drain committed while this transaction waited for its lock.
    await session.execute(delete(Volunteer).where(Volunteer.email_normalized == email_normalized))
    await session.execute(delete(User).where(User.email_normalized == email_normalized))
    # The address is personal data: invitations still addressed to it go too.
    await session.execute(delete(ManagerInvitation).where(ManagerInvitation.email_normalized == email_normalized))
    if drain:
        after_commit(session, _drain_applications, key="drain:applications")


async def _drain_applications(clients: Clients) -> None:
    await asyncio.to_thread(enqueue.drain_applications, clients.rq_connection)
