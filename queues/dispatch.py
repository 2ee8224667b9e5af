"""Dispatch jobs: plan a run (the only place the engine is loaded), commit it, withdraw a cancelled run's proposals,
and lapse proposals past their expiry (scheduled from the worker's tick)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from app.applications.capacity import Places
from queues import enqueue
from queues.runtime import JobContext, run_job
from surge.dispatch import planning, proposals

log = logging.getLogger("renfort.dispatch")


def _places(context: JobContext) -> Places:
    return Places(context.redis, backlog_limit=context.settings.application_backlog_limit)


def _drain(context: JobContext) -> None:
    enqueue.drain_applications(context.rq_connection)


def plan_run(run_id: int) -> dict[str, int]:
    return run_job(lambda context: _plan(context, run_id))


async def _plan(context: JobContext, run_id: int) -> dict[str, int]:
    try:
        result = await planning.plan_run(context.engine, _places(context), run_id)
    except Exception:
        await planning.mark_failed(context.engine, run_id)  # the coordinator sees it; the error goes to Sentry
        raise
    log.info("dispatch run %d planned: %d places", run_id, result["planned"])
    return result


def commit_run(run_id: int) -> dict[str, int]:
    return run_job(lambda context: _commit(context, run_id))


async def _commit(context: JobContext, run_id: int) -> dict[str, int]:
    ttl = context.settings.dispatch_proposal_hours * 3600
    result = await proposals.commit_run(context.engine, _places(context), context.redis, run_id, ttl_seconds=ttl,
                                        request_drain=lambda: _drain(context))
    log.info("dispatch run %d committed: %s", run_id, result)
    return result


def withdraw_run(run_id: int) -> dict[str, int]:
    return run_job(lambda context: _withdraw(context, run_id))


async def _withdraw(context: JobContext, run_id: int) -> dict[str, int]:
    result = await proposals.withdraw_run(context.engine, _places(context), context.redis, run_id,
                                          request_drain=lambda: _drain(context))
    log.info("dispatch run %d withdrawn: %d proposals", run_id, result["withdrawn"])
    return result


def expire_proposals() -> dict[str, int]:
    return run_job(_expire)


async def _expire(context: JobContext) -> dict[str, int]:
    result = await proposals.expire_proposals(context.engine, _places(context), now=datetime.now(UTC),
                                              request_drain=lambda: _drain(context))
    if result["expired"]:
        log.info("%d dispatch proposals expired", result["expired"])
    return result
