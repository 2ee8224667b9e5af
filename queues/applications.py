"""The application drain: queued application changes from Redis into PostgreSQL (the loop is queues/drain.py),
then the e-mails they call for."""

from __future__ import annotations

import logging

import msgspec
import sentry_sdk
from redis import Redis as SyncRedis
from sqlalchemy.exc import DataError, IntegrityError

from app.applications.capacity import PREFIX, ApplicationEvent
from app.applications.service import save_events
from app.db.base import unit_of_work
from app.durable_queue import DurableQueue
from queues import enqueue
from queues.drain import drain, schedule_if_waiting
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.applications")

# event kind (and status) → the e-mail the volunteer gets
MAILS = {
    ("applied", "pending"): "application_received",
    ("applied", "waitlisted"): "application_waitlisted",
    ("promoted", "pending"): "application_promoted",
    ("accepted", "accepted"): "application_accepted",
    ("declined", "declined"): "application_declined",
    ("proposed", "proposed"): "dispatch_proposal",
    ("dispatch_cancelled", "cancelled"): "dispatch_cancelled",
}


def drain_applications(attempt: int = 0) -> dict[str, int]:
    return run_job(lambda context: _drain(context, attempt))


async def _drain(context: JobContext, attempt: int) -> dict[str, int]:
    queue = DurableQueue(context.redis, PREFIX)

    async def write(raw: list[bytes]) -> list[str]:
        events = [msgspec.json.decode(item, type=ApplicationEvent) for item in raw]
        try:
            async with unit_of_work(context.engine) as session:
                await save_events(session, events)
        except (IntegrityError, DataError) as error:  # not expected: the statement filters what could fail
            for item, event in zip(raw, events, strict=True):
                await queue.bury_raw(item, f"{event.m}:{event.v}:{event.n}", type(error).__name__)
            sentry_sdk.capture_message("application changes moved to dead letters", level="error")
            return []
        mails = [(event.m, event.v, MAILS[(event.k, event.s)], f"application:{event.m}:{event.v}:{event.n}")
                 for event in events if (event.k, event.s) in MAILS]
        if mails:
            enqueue.send_application_mails(context.rq_connection, mails)
        log.info("drained %d application changes", len(events))
        return []

    def enqueue_next(attempt: int) -> None:
        enqueue.drain_applications(context.rq_connection, attempt=attempt)

    return await drain(context, queue, write, enqueue_next=enqueue_next, attempt=attempt, log=log)


def ensure_drain(connection: SyncRedis, *, starting: bool = False) -> bool:
    return schedule_if_waiting(connection, PREFIX, enqueue.drain_applications, starting=starting)
