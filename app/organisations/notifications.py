"""Managers hear of moderation decisions on their organisation by e-mail, through a job queued once the decision
has committed (queues/organisation_mail.py). The job names the decision by the organisation's id and the moment
its status changed: a decision overtaken by a later one before its e-mail left is not sent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.after_commit import Clients, after_commit
from queues import enqueue

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ACTIONS = ("validate", "refuse", "suspend", "reinstate")


def stamp(changed_at: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding), to compare with what PostgreSQL holds."""
    return (changed_at - EPOCH) // timedelta(microseconds=1)


def tell_managers(session: AsyncSession, organisation_id: int, action: str, changed_at: datetime) -> None:
    if action not in ACTIONS:
        return
    changed = stamp(changed_at)

    async def send(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.send_organisation_status_mails, clients.rq_connection, organisation_id,
                                action, changed)

    after_commit(session, send, key=f"organisation-status:{organisation_id}")
