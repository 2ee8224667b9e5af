"""The application drain: queued application changes from Redis into PostgreSQL (the loop, with its leases and the
isolation of changes PostgreSQL refuses, is queues/drain.py), then the e-mails they call for: the volunteers', and
a word to the organisations that got new applications (queues/manager_notifications.py)."""

from __future__ import annotations

import logging

import msgspec
from redis import Redis as SyncRedis
from sqlalchemy import select

from app.applications.capacity import PREFIX, ApplicationEvent, ApplicationQueue
from app.applications.service import save_events
from app.applications.statuses import ApplicationStatus as Status
from app.db.base import unit_of_work
from app.missions.models import Mission
from queues import enqueue
from queues.drain import Writer, Written, drain, schedule_if_waiting
from queues.manager_notifications import request_notice
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.applications")

# event kind (and status) → the e-mail the volunteer gets
MAILS = {
    ("applied", Status.PENDING): "application_received",
    ("applied", Status.WAITLISTED): "application_waitlisted",
    ("promoted", Status.PENDING): "application_promoted",
    ("accepted", Status.ACCEPTED): "application_accepted",
    ("declined", Status.DECLINED): "application_declined",
    ("proposed", Status.PROPOSED): "dispatch_proposal",
    ("dispatch_cancelled", Status.CANCELLED): "dispatch_cancelled",
}
# Changes that make an application new to its organisation.
NEW = {("applied", Status.PENDING), ("applied", Status.WAITLISTED)}


def drain_applications(attempt: int = 0) -> dict[str, int]:
    return run_job(lambda context: _drain(context, attempt))


class MailEffect(msgspec.Struct, frozen=True):
    """E-mails a saved batch calls for, filed in the effects list until RQ takes them: ids, kinds and keys only;
    `organisations`: those with new applications in the batch, whose managers are to hear of them."""

    items: list[tuple[int, int, str, str]]
    organisations: list[int] = []


async def _drain(context: JobContext, attempt: int) -> dict[str, int]:
    queue = ApplicationQueue(context.redis)

    async def write(raw: list[bytes]) -> Written:
        events = [msgspec.json.decode(item, type=ApplicationEvent) for item in raw]
        new_on = {event.mission_id for event in events if (event.kind, event.status) in NEW}
        async with unit_of_work(context.engine) as session:
            await save_events(session, events)
            organisations = sorted(set(await session.scalars(
                select(Mission.organisation_id).where(Mission.id.in_(new_on))
            ))) if new_on else []
        mails = [(event.mission_id, event.volunteer_id, MAILS[(event.kind, event.status)],
                  f"application:{event.mission_id}:{event.volunteer_id}:{event.version}")
                 for event in events if (event.kind, event.status) in MAILS]
        log.info("drained %d application changes", len(events))
        effect = MailEffect(mails, organisations)
        return Written(effects=[msgspec.json.encode(effect)] if mails or organisations else [])

    async def deliver(raw: bytes) -> None:
        effect = msgspec.json.decode(raw, type=MailEffect)
        if effect.items:
            enqueue.send_application_mails(context.rq_connection, effect.items)
        for organisation_id in effect.organisations:
            request_notice(context.rq_connection, organisation_id)

    def enqueue_next(attempt: int) -> None:
        enqueue.drain_applications(context.rq_connection, attempt=attempt)

    writer = Writer(write=write, describe=queue.describe, deliver=deliver)
    return await drain(context, queue, writer, enqueue_next=enqueue_next, attempt=attempt, log=log)


def ensure_drain(connection: SyncRedis, *, starting: bool = False) -> bool:
    return schedule_if_waiting(connection, PREFIX, enqueue.drain_applications, starting=starting)
