"""Mission jobs: missions end on their own once their end date has passed."""

from __future__ import annotations

from datetime import date

from app.db.base import unit_of_work
from app.missions import service
from queues.runtime import JobContext, run_job


def finish_past_missions() -> int:
    """Ends every published or full mission whose end date is before today; returns how many."""

    async def body(context: JobContext) -> int:
        async with unit_of_work(context.engine, context.clients) as session:  # their cache bumps after the commit
            return await service.finish_past_missions(session, today=date.today())

    return run_job(body)
