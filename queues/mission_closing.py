"""The closing of a cancelled or finished mission's applications: through Redis (the drain writes PostgreSQL), then
one e-mail per person concerned. Re-runnable: an application closed already is not closed again, and a person is
told once (each e-mail has its idempotency key, and leaves the mission's `closing` list once queued).

The closing job is enqueued after the commit of the mission's end: that enqueue may fail (an after-commit action's
failure is logged, not retried), and the job may spend its retries. So a sweep, every few minutes, enqueues it again
for the missions ended lately that still have something to close or someone to tell."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from app.applications import service
from app.applications.capacity import Places
from queues import enqueue
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.applications")
SWEEP_DAYS = 30  # older ends were swept thousands of times already, and their `closing` lists expired (INDEX_TTL)


def close_mission_applications(mission_id: int) -> dict[str, int]:
    return run_job(lambda context: _close(context, mission_id))


async def _close(context: JobContext, mission_id: int) -> dict[str, int]:
    places = Places(context.redis, backlog_limit=context.settings.application_backlog_limit)
    closing = await service.close_applications(places, context.engine, mission_id)
    if closing.drain_needed:
        enqueue.drain_applications(context.rq_connection)
    # Also what an earlier run closed but could not queue the e-mails of (it stopped in between).
    mails = await service.closing_mails(places, mission_id)
    if mails:
        enqueue.send_application_mails(context.rq_connection, mails)
        await places.told(mission_id, [volunteer_id for _, volunteer_id, _, _ in mails])
    log.info("mission %d: %d applications closed, %d volunteers to tell", mission_id, closing.closed, len(mails))
    return {"closed": closing.closed, "mailed": len(mails)}


def sweep_mission_closings() -> dict[str, int]:
    return run_job(_sweep)


async def _sweep(context: JobContext) -> dict[str, int]:
    places = Places(context.redis, backlog_limit=context.settings.application_backlog_limit)
    since = datetime.now(UTC) - timedelta(days=SWEEP_DAYS)
    missions = await service.unclosed_missions(places, context.engine, since=since)
    for mission_id in missions:
        enqueue.close_mission_applications(context.rq_connection, mission_id)
    if missions:
        log.info("%d ended missions to close again", len(missions))
    return {"missions": len(missions)}
