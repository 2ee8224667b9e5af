"""The application drain: queued application changes from Redis into PostgreSQL (the loop, with its leases and the
isolation of changes PostgreSQL refuses, is queues/drain.py), then the e-mails they call for."""

from __future__ import annotations

import logging

import msgspec
from redis import Redis as SyncRedis

from app.applications.capacity import PREFIX, ApplicationEvent, ApplicationQueue
from app.applications.service import save_events
from app.applications.statuses import ApplicationStatus as Status
from app.db.base import unit_of_work
from queues import enqueue
from queues.drain import Writer, Written, drain, schedule_if_waiting
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


def drain_applications(attempt: int = 0) -> dict[str, int]:
    return run_job(lambda context: _drain(context, attempt))


class MailEffect(msgspec.Struct, frozen=True):
    """E-mails a saved batch calls for, filed in the effects list until RQ takes them: ids, kinds and keys only."""

    items: list[tuple[int, int, str, str]]


async def _drain(context: JobContext, attempt: int) -> dict[str, int]:
    queue = ApplicationQueue(context.redis)

    async def write(raw: list[bytes]) -> Written:
        events = [msgspec.json.decode(item, type=ApplicationEvent) for item in raw]
        async with unit_of_work(context.engine) as session:
            await save_events(session, events)
        mails = [(event.mission_id, event.volunteer_id, MAILS[(event.kind, event.status)],
                  f"application:{event.mission_id}:{event.volunteer_id}:{event.version}")
                 for event in events if (event.kind, event.status) in MAILS]
        log.info("drained %d application changes", len(events))
        return Written(effects=[msgspec.json.encode(MailEffect(mails))] if mails else [])

    async def deliver(effect: bytes) -> None:
        enqueue.send_application_mails(context.rq_connection, msgspec.json.decode(effect, type=MailEffect).items)

    def enqueue_next(attempt: int) -> None:
        enqueue.drain_applications(context.rq_connection, attempt=attempt)

    writer = Writer(write=write, describe=queue.describe, deliver=deliver)
    return await drain(context, queue, writer, enqueue_next=enqueue_next, attempt=attempt, log=log)


def ensure_drain(connection: SyncRedis, *, starting: bool = False) -> bool:
    return schedule_if_waiting(connection, PREFIX, enqueue.drain_applications, starting=starting)
