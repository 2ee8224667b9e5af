"""The partner feed jobs: one import run (ids only in the payload), and the minute tick that starts the runs due."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from app.db.base import unit_of_work
from app.partners import imports
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.partner_feeds")


@dataclass(frozen=True)
class FeedKeys:
    """The Redis keys of one partner's scheduled imports."""

    partner_id: int

    @property
    def scheduled(self) -> str:
        # Set for the partner's interval when the schedule starts a run: at most one per interval, across workers.
        return f"renfort:partners:{self.partner_id}:feed-scheduled"


def import_partner_feed(partner_id: int, import_id: int) -> str:
    """`partner_id` names the run in the job's listing; the row `import_id` says the rest."""

    async def body(context: JobContext) -> str:
        status = await imports.run_import(context.engine, context.clients, context.settings, import_id)
        log.info("partner feed import %s of partner %s: %s", import_id, partner_id, status)
        return status

    return run_job(body)


def schedule_partner_feeds() -> int:
    """Fails the runs a dead worker left "running", then asks for the imports that are due; returns how many."""

    async def body(context: JobContext) -> int:
        async with unit_of_work(context.engine) as session:
            await imports.fail_stale(session)
            due = await imports.due_partners(session)
        started = 0
        for partner_id, interval in due:
            try:
                if not await context.redis.set(FeedKeys(partner_id).scheduled, b"1", nx=True,
                                               ex=max(interval, 1) * 60):
                    continue
            except RedisError:
                log.warning("could not mark partner %s's feed as scheduled; next tick", partner_id)
                continue
            try:
                async with unit_of_work(context.engine, context.clients) as session:
                    await imports.request_import(session, partner_id)
                started += 1
            except imports.NoFeed:
                continue  # its feed was removed meanwhile
            except Exception:
                await context.redis.delete(FeedKeys(partner_id).scheduled)  # not started: the next tick tries again
                raise
        return started

    return run_job(body)
