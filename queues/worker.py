"""The `worker` process: an RQ worker on the single Renfort queue, which also re-drains what dead consumers left.

`python -m queues.worker` (Procfile `worker`); warm shutdown on SIGTERM (the current job finishes).
`python -m queues.worker --burst` works until the queue is empty, then exits (tests, one-off catch-up).
"""

from __future__ import annotations

import argparse
import logging
import time

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.serializers import JSONSerializer

from app.observability import configure_logging, init_sentry
from app.settings import get_settings
from queues import applications, enqueue, signups
from queues.connection import job_queue, sync_redis

log = logging.getLogger("renfort.worker")
FINISH_MISSIONS_LOCK = "renfort:missions:finish-lock"
EXPIRE_PROPOSALS_LOCK = "renfort:dispatch:expire-lock"
PURGE_UNCONFIRMED_LOCK = "renfort:volunteers:purge-lock"
NEARLY_FULL = 0.95


class RenfortWorker(Worker):
    def run_maintenance_tasks(self) -> None:
        drain_while_full(self.connection)
        super().run_maintenance_tasks()
        try:
            signups.ensure_drain(self.connection)
            applications.ensure_drain(self.connection)
        except RedisError:
            log.warning("could not check the write queues; will retry on the next tick")
        schedule_mission_ends(self.connection)
        schedule_proposal_expiry(self.connection)
        schedule_unconfirmed_purge(self.connection)


def nearly_full(connection: Redis) -> bool:
    """At (or within a few percent of) maxmemory: RQ's bookkeeping writes would be refused."""
    try:
        memory = connection.info("memory")
    except RedisError:
        return False  # away, not full: RQ's own reconnection deals with it
    limit = int(memory.get("maxmemory") or 0)
    return limit > 0 and int(memory.get("used_memory") or 0) >= NEARLY_FULL * limit


def drain_while_full(connection: Redis, *, patience_seconds: float = 600) -> None:
    """RQ can neither register a worker, nor take, nor record a job while Redis refuses writes (at its memory limit
    with noeviction); the drains can (their scripts run under OOM), and draining is what frees memory. So a worker
    that finds Redis full drains the write queues itself, outside RQ, until Redis has room again."""
    deadline = time.monotonic() + patience_seconds
    while nearly_full(connection) and time.monotonic() < deadline:
        log.warning("Redis is at its memory limit: draining the write queues outside RQ")
        moved = signups.drain_signups()["drained"] + applications.drain_applications()["drained"]
        if not moved:
            time.sleep(1)  # full of something else: wait for room


def schedule_mission_ends(connection: Redis) -> bool:
    """Enqueues the end of past missions at most once a minute, however many workers tick."""
    try:
        if connection.set(FINISH_MISSIONS_LOCK, b"1", nx=True, ex=60):
            enqueue.finish_past_missions(connection)
            return True
    except RedisError:
        log.warning("could not schedule the end of past missions; will retry on the next tick")
    return False


def schedule_proposal_expiry(connection: Redis) -> bool:
    """Enqueues the lapse of unanswered dispatch proposals at most once a minute, however many workers tick."""
    try:
        if connection.set(EXPIRE_PROPOSALS_LOCK, b"1", nx=True, ex=60):
            enqueue.expire_proposals(connection)
            return True
    except RedisError:
        log.warning("could not schedule the expiry of dispatch proposals; will retry on the next tick")
    return False


def schedule_unconfirmed_purge(connection: Redis) -> bool:
    """Enqueues the purge of sign-ups never confirmed at most once an hour, however many workers tick."""
    try:
        if connection.set(PURGE_UNCONFIRMED_LOCK, b"1", nx=True, ex=3600):
            enqueue.purge_unconfirmed(connection)
            return True
    except RedisError:
        log.warning("could not schedule the purge of unconfirmed sign-ups; will retry on the next tick")
    return False


def main(burst: bool = False) -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    init_sentry(settings.sentry_dsn, environment=settings.environment, component="worker")
    connection = sync_redis(settings.redis_url)
    worker = RenfortWorker(
        [job_queue(connection)],
        connection=connection,
        serializer=JSONSerializer,
        # A short TTL makes the idle loop tick every 15 s, so maintenance (and the re-drain check) runs often.
        worker_ttl=30,
        maintenance_interval=10,
    )
    drain_while_full(connection)
    signups.ensure_drain(connection, starting=True)
    applications.ensure_drain(connection, starting=True)
    worker.work(burst=burst, with_scheduler=not burst, logging_level=settings.log_level)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Renfort RQ worker")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    main(burst=parser.parse_args().burst)
