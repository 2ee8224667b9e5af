"""Organisation housekeeping: an organisation registered without an account (app/organisations/onboarding.py) that
nobody claimed before every invitation to manage it expired is deleted, and invitations past their expiry are
forgotten (their address is personal data, and they open nothing any more)."""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, and_, delete, exists, func, select

from app.db.base import unit_of_work
from app.organisations.models import ManagerInvitation, Organisation, OrganisationManager
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.organisations")
BATCH = 500


def purge_unclaimed_organisations() -> dict[str, int]:
    return run_job(_purge)


def _unclaimed() -> ColumnElement[bool]:
    live_invitation = exists().where(ManagerInvitation.organisation_id == Organisation.id,
                                     ManagerInvitation.accepted_at.is_(None),
                                     ManagerInvitation.expires_at > func.now())
    manager = exists().where(OrganisationManager.organisation_id == Organisation.id)
    return and_(Organisation.status == "draft", ~manager, ~live_invitation)


async def _purge(context: JobContext) -> dict[str, int]:
    """Idempotent. One transaction per batch; the rows are locked before a second statement checks them again, so
    an invitation accepted meanwhile (its manager row waits for the lock, or committed before the check) keeps its
    organisation."""
    organisations = 0
    while True:
        async with unit_of_work(context.engine) as session:
            due = list(await session.scalars(
                select(Organisation.id).where(_unclaimed()).order_by(Organisation.id).limit(BATCH)
                .with_for_update(skip_locked=True)
            ))
            deleted = len(list(await session.scalars(
                delete(Organisation).where(Organisation.id.in_(due), _unclaimed()).returning(Organisation.id)
            ))) if due else 0
        organisations += deleted
        if len(due) < BATCH:
            break
    async with unit_of_work(context.engine) as session:
        invitations = len(list(await session.scalars(
            delete(ManagerInvitation).where(ManagerInvitation.expires_at <= func.now()).returning(ManagerInvitation.id)
        )))
    log.info("purged %d unclaimed organisations and %d expired invitations", organisations, invitations)
    return {"organisations": organisations, "invitations": invitations}
