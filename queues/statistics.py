"""The public statistics' refresh: every figure computed in SQL, stored as one document in Redis for the page."""

from __future__ import annotations

from datetime import UTC, datetime

from app.db.base import unit_of_work
from app.statistics import cache, figures
from queues.runtime import JobContext, run_job


def refresh_statistics() -> str:
    """Recomputes the document and replaces the stored one; returns its `computed_at`. Re-runnable at will."""

    async def body(context: JobContext) -> str:
        async with unit_of_work(context.engine) as session:
            document = await figures.compute(session, now=datetime.now(UTC))
        await cache.store(context.redis, document)
        return document.computed_at

    return run_job(body)
