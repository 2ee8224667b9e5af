"""Volunteer housekeeping: sign-ups held back past the per-address limit and never confirmed are deleted once their
30 days are up (their confirmation link has expired by then). Their applications go with them (ON DELETE CASCADE)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import delete, select

from app.db.base import unit_of_work
from app.volunteers import confirmation
from app.volunteers.models import Volunteer
from app.volunteers.signup_queue import SignupQueue
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.volunteers")
BATCH = 500


def purge_unconfirmed() -> dict[str, int]:
    return run_job(_purge_unconfirmed)


async def _purge_unconfirmed(context: JobContext) -> dict[str, int]:
    """Idempotent: a second run finds nothing left to delete. One transaction per batch, so a large purge never holds
    thousands of row locks for long."""
    queue = SignupQueue(context.redis, context.settings.secret_key.reveal())
    cutoff = datetime.now(UTC) - confirmation.HOLD
    purged = 0
    while True:
        async with unit_of_work(context.engine) as session:
            # SKIP LOCKED: a row being confirmed right now is left to its confirmation.
            due = (select(Volunteer.id).where(Volunteer.unconfirmed, Volunteer.accepted_at < cutoff)
                   .order_by(Volunteer.accepted_at).limit(BATCH).with_for_update(skip_locked=True))
            emails = list(await session.scalars(
                delete(Volunteer).where(Volunteer.id.in_(due), Volunteer.unconfirmed)
                .returning(Volunteer.email_normalized)
            ))
            # Before the commit, so a Redis failure leaves the rows for the next run: a dedupe mark outliving its row
            # would turn this person's next sign-up into a repeat of nobody.
            for email in emails:
                await queue.forget_person(email)
        purged += len(emails)
        if len(emails) < BATCH:
            break
    log.info("purged %d sign-ups left unconfirmed for %d days", purged, confirmation.HOLD_DAYS)
    return {"purged": purged}
