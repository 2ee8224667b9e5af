"""Mission jobs: missions end on their own once their end date has passed."""

from __future__ import annotations

from datetime import date

from app.applications.capacity import Places
from app.db.base import unit_of_work
from app.missions import cache, service
from queues.runtime import JobContext, run_job


def finish_past_missions() -> int:
    """Ends every published or full mission whose end date is before today; returns how many."""

    async def body(context: JobContext) -> int:
        async with unit_of_work(context.engine) as session:
            finished = await service.finish_past_missions(session, today=date.today())
        if finished:
            await cache.invalidate(context.redis)  # after the commit
            await Places(context.redis).changed(cache.changed_capacity(session))  # they take no more applications
        return finished

    return run_job(body)
