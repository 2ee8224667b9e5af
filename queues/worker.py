"""The `worker` process: an RQ worker on the single Renfort queue, which also re-drains what dead consumers left.

`python -m queues.worker` (Procfile `worker`); warm shutdown on SIGTERM (the current job finishes).
`python -m queues.worker --burst` works until the queue is empty, then exits (tests, one-off catch-up).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import BusyLoadingError, OutOfMemoryError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Worker
from rq.serializers import JSONSerializer

from app.formats import PARIS
from app.observability import configure_logging, init_sentry, job_context
from app.settings import get_settings
from app.statistics.cache import KEYS as STATISTICS_KEYS
from app.statistics.cache import REFRESH_SECONDS
from app.switches import jobs as job_pause
from queues import applications, enqueue, schema, signups
from queues.connection import job_queue, request_id_of, sync_redis
from queues.mail_keys import daily_lock

log = logging.getLogger("renfort.worker")
FINISH_MISSIONS_LOCK = "renfort:missions:finish-lock"
EXPIRE_PROPOSALS_LOCK = "renfort:dispatch:expire-lock"
PURGE_UNCONFIRMED_LOCK = "renfort:volunteers:purge-lock"
PURGE_ORGANISATIONS_LOCK = "renfort:organisations:purge-lock"
CLOSING_SWEEP_LOCK = "renfort:missions:closing-sweep-lock"
PARTNER_FEEDS_LOCK = "renfort:partners:feeds-tick-lock"
# The daily e-mails (reminders to organisations, the referents' digest) leave from this hour on, Paris time.
DAILY_HOUR = 8
NEARLY_FULL = 0.95
REDIS_SETBACKS = (BusyLoadingError, OutOfMemoryError, RedisConnectionError)


class RenfortWorker(Worker):
    stop_asked = False  # SIGTERM/SIGINT seen: RQ's loop returning then is the end, not a setback
    # The long-running workers schedule the daily e-mails; a burst (tests, a one-off catch-up) sends none as a
    # side effect.
    schedules_daily_mail = True

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)

    def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
        # In the work horse: the job's log lines (and Sentry events) name the job and the request that enqueued it.
        with job_context(job.id, request_id_of(job)):
            return bool(super().perform_job(job, queue, execution))

    def execute_job(self, job: Any, queue: Any) -> None:
        # While pause_jobs is on, a non-essential job is set aside instead of run (app/switches/jobs.py).
        if not job_pause.hold(self.connection, job, queue):
            super().execute_job(job, queue)

    def run_maintenance_tasks(self) -> None:
        drain_while_full(self.connection)
        super().run_maintenance_tasks()
        job_pause.release(self.connection, self.queues[0])
        try:
            signups.ensure_drain(self.connection)
            applications.ensure_drain(self.connection)
        except RedisError:
            log.warning("could not check the write queues; will retry on the next tick")
        schedule_mission_ends(self.connection)
        schedule_closing_sweep(self.connection)
        schedule_proposal_expiry(self.connection)
        schedule_unconfirmed_purge(self.connection)
        schedule_unclaimed_organisations_purge(self.connection)
        schedule_statistics_refresh(self.connection)
        if self.schedules_daily_mail:
            schedule_application_reminders(self.connection)
            schedule_referent_digests(self.connection)
            schedule_inactivity_sweep(self.connection)
            # Not in a burst either: it fetches partners' feeds over the network.
            schedule_partner_feeds(self.connection)


def nearly_full(connection: Redis, threshold: float) -> bool:
    """Past `threshold` of maxmemory (at start-up, within a few percent: RQ's registration would be refused)."""
    try:
        memory = connection.info("memory")
    except RedisError:
        return False  # away, not full: RQ's own reconnection deals with it
    limit = int(memory.get("maxmemory") or 0)
    return limit > 0 and int(memory.get("used_memory") or 0) >= threshold * limit


def drain_while_full(connection: Redis, *, threshold: float = 1.0) -> None:
    """RQ can neither register a worker, nor take, nor record a job while Redis refuses writes (at its memory limit
    with noeviction); the drains can (their scripts run under OOM), and draining is what frees memory. So a worker
    that finds Redis full (past `threshold` of maxmemory) drains the write queues itself, outside RQ, and stops as
    soon as a round moves nothing: what fills Redis then is not the queues, and RQ's jobs must run."""
    while nearly_full(connection, threshold):
        log.warning("Redis is at its memory limit: draining the write queues outside RQ")
        if not signups.drain_signups()["drained"] + applications.drain_applications()["drained"]:
            return


def _schedule_once(connection: Redis, lock: str, seconds: int, enqueue_job: Callable[[Redis], object],
                   what: str) -> bool:
    """Enqueues a periodic job at most once per `seconds`, however many workers tick."""
    try:
        if connection.set(lock, b"1", nx=True, ex=seconds):
            enqueue_job(connection)
            return True
    except RedisError:
        log.warning("could not schedule %s; will retry on the next tick", what)
    return False


def schedule_mission_ends(connection: Redis) -> bool:
    return _schedule_once(connection, FINISH_MISSIONS_LOCK, 60, enqueue.finish_past_missions,
                          "the end of past missions")


def schedule_closing_sweep(connection: Redis) -> bool:
    return _schedule_once(connection, CLOSING_SWEEP_LOCK, 600, enqueue.sweep_mission_closings,
                          "the sweep of ended missions' applications")


def schedule_proposal_expiry(connection: Redis) -> bool:
    return _schedule_once(connection, EXPIRE_PROPOSALS_LOCK, 60, enqueue.expire_proposals,
                          "the expiry of dispatch proposals")


def schedule_unconfirmed_purge(connection: Redis) -> bool:
    return _schedule_once(connection, PURGE_UNCONFIRMED_LOCK, 3600, enqueue.purge_unconfirmed,
                          "the purge of unconfirmed sign-ups")


def schedule_unclaimed_organisations_purge(connection: Redis) -> bool:
    return _schedule_once(connection, PURGE_ORGANISATIONS_LOCK, 3600, enqueue.purge_unclaimed_organisations,
                          "the purge of unclaimed organisations")


def schedule_statistics_refresh(connection: Redis) -> bool:
    return _schedule_once(connection, STATISTICS_KEYS.scheduled, REFRESH_SECONDS, enqueue.refresh_statistics,
                          "the refresh of the public statistics")


def schedule_partner_feeds(connection: Redis) -> bool:
    return _schedule_once(connection, PARTNER_FEEDS_LOCK, 60, enqueue.schedule_partner_feeds,
                          "the partner feed imports")


def _schedule_daily(connection: Redis, name: str, enqueue_job: Callable[[Redis], object], what: str,
                    now: float | None) -> bool:
    """Once a Paris day, at the first tick past DAILY_HOUR, however many workers tick."""
    local = datetime.fromtimestamp(time.time() if now is None else now, PARIS)
    if local.hour < DAILY_HOUR:
        return False
    return _schedule_once(connection, daily_lock(name, local.date().isoformat()), 2 * 86_400, enqueue_job, what)


def schedule_application_reminders(connection: Redis, now: float | None = None) -> bool:
    return _schedule_daily(connection, "reminders", enqueue.remind_pending_applications, now=now,
                           what="the reminders of pending applications")


def schedule_referent_digests(connection: Redis, now: float | None = None) -> bool:
    return _schedule_daily(connection, "referent-digest", enqueue.send_referent_digests, now=now,
                           what="the referents' digest")


def schedule_inactivity_sweep(connection: Redis, now: float | None = None) -> bool:
    return _schedule_daily(connection, "inactivity", enqueue.sweep_inactivity, now=now,
                           what="the inactivity warnings and anonymisations")


def main(burst: bool = False) -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    init_sentry(settings.sentry_dsn, environment=settings.environment, component="worker", release=settings.release)
    schema.wait_for_schema(settings.database_url)  # never drain into a schema this code was not written for
    connection = sync_redis(settings.redis_url)
    while True:
        try:
            drain_while_full(connection, threshold=NEARLY_FULL)
            signups.ensure_drain(connection, starting=True)
            applications.ensure_drain(connection, starting=True)
            worker = RenfortWorker(
                [job_queue(connection)],
                connection=connection,
                serializer=JSONSerializer,
                # A short TTL makes the idle loop tick every 15 s, so maintenance (and the re-drain check) runs often.
                worker_ttl=30,
                maintenance_interval=10,
            )
            worker.schedules_daily_mail = not burst
            worker.work(burst=burst, with_scheduler=not burst, logging_level=settings.log_level)
            # RQ also returns when its loop gave up on an error (after logging it): only a requested stop ends here.
            if burst or worker.stop_asked:
                return
            log.warning("the worker's loop ended without being asked to; starting again")
            time.sleep(1)
        except REDIS_SETBACKS as error:
            if burst:
                raise
            # Redis restarting (loading its AOF), full, or gone for a moment: RQ gives up on its own bookkeeping;
            # this process starts a fresh worker once Redis answers again, instead of dying and waiting for a
            # process manager. A job cut off meanwhile is re-drained when its lease runs out.
            log.warning("the worker lost Redis (%s); starting again", type(error).__name__)
            time.sleep(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Renfort RQ worker")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    main(burst=parser.parse_args().burst)
