"""`pause_jobs` in the workers: while it is on, a non-essential job a worker takes from the queue is set aside, not
run — its id moves to the held list in one MULTI with its removal from RQ's in-progress list, so it is neither lost,
nor run, nor counted as failed, and keeps its retries — and once the switch is off, the workers' maintenance tick puts
the held jobs back on the queue, oldest first, behind what is queued.

Essential jobs keep running: the drains that save accepted sign-ups and applications into PostgreSQL (a 2xx was
answered; the queues must not age), sign-in e-mails (someone waits at the screen for the link), and dispatch
(planning, committing and withdrawing runs, lapsing proposals: the coordinators' crisis work, and the places that
expired proposals give back). Everything else waits: welcome, application, status and invitation e-mails, digests,
reminders, exports, purges and sweeps. A job this list does not know waits too.

Used by `queues/worker.py` with the worker's own connection and queue (RQ's API: no other module's keys here).
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError, WatchError

from app.switches.schemas import Switch
from app.switches.store import KEYS, SwitchReader

log = logging.getLogger("renfort.switches")

ESSENTIAL_JOBS = frozenset({
    "queues.signups.drain_signups",
    "queues.applications.drain_applications",
    "queues.mail.send_signin_mail",
    "queues.dispatch.plan_run",
    "queues.dispatch.commit_run",
    "queues.dispatch.withdraw_run",
    "queues.dispatch.expire_proposals",
})
RELEASE_BATCH = 500
_switches = SwitchReader()  # per worker process, at most a second old


def paused(connection: Redis) -> bool:
    return Switch.PAUSE_JOBS in _switches.current(connection)


def hold(connection: Redis, job: Any, queue: Any) -> bool:
    """True when `job` was set aside (the worker must not run it): pause_jobs is on and the job is not essential."""
    if job.func_name in ESSENTIAL_JOBS or not paused(connection):
        return False
    with connection.pipeline(transaction=True) as pipeline:
        pipeline.rpush(KEYS.held_jobs, job.id)
        pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
        pipeline.execute()
    log.info("job %s held while pause_jobs is on (%s)", job.id, job.func_name)
    return True


def release(connection: Redis, queue: Any) -> int:
    """Once pause_jobs is off: the held jobs back on `queue`, in batches; returns how many. Each batch moves in one
    WATCHed transaction, so two workers releasing at once never queue a job twice."""
    released = 0
    try:
        if paused(connection) or not connection.llen(KEYS.held_jobs):
            return 0
        with connection.pipeline() as pipeline:
            while moved := _release_batch(pipeline, queue):
                released += moved
    except RedisError as error:
        log.warning("could not release the held jobs (%s); will retry on the next tick", type(error).__name__)
    if released:
        log.warning("pause_jobs is off: %d held job(s) queued again", released)
    return released


def _release_batch(pipeline: Pipeline, queue: Any) -> int:
    """Retried from the start when a worker holds or releases a job meanwhile (the WATCH fails)."""
    while True:
        try:
            pipeline.watch(KEYS.held_jobs)
            ids: list[Any] = pipeline.lrange(KEYS.held_jobs, 0, RELEASE_BATCH - 1)
            if not ids:
                pipeline.unwatch()
                return 0
            pipeline.multi()
            for job_id in ids:
                queue.push_job_id(job_id.decode(), pipeline=pipeline)
            pipeline.ltrim(KEYS.held_jobs, len(ids), -1)
            pipeline.execute()
            return len(ids)
        except WatchError:
            continue
