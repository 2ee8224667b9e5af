"""The RQ queue and its Redis connection; JSON serialisation only (never pickle). Every job enqueued while a web
request is served carries that request's id in its `meta`, set here for every enqueue path (now, in, at), and the
worker puts it back around the job (queues/worker.py), so the job's log lines name the request that caused it."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import utcparse

from app.observability import enqueuing_request_id

# One queue: a worker listening to a single queue moves each job to an in-progress list before running it
# (RQ's reliable dequeue), so a killed worker loses no job. Drains jump the line with at_front.
QUEUE_NAME = "renfort"
# How many jobs at the head of the queue a scrape reads to tell e-mails from the rest and find the oldest: RQ takes
# them from the head, so the oldest waiting are there (at_front jobs, newer, do not hide them).
SCAN = 1_000
MAIL_MODULES = ("queues.mail.", "queues.organisation_mail.", "queues.mission_mail.", "queues.referent_digest.",
                "queues.manager_notifications.", "queues.youth_mail.")


class RenfortQueue(Queue):
    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        request_id = enqueuing_request_id()
        if request_id is not None:
            kwargs["meta"] = {"request_id": request_id, **(kwargs.get("meta") or {})}
        return super().create_job(*args, **kwargs)


def sync_redis(url: str) -> Redis:
    return Redis.from_url(url, health_check_interval=30, socket_keepalive=True)


def job_queue(connection: Redis) -> Queue:
    return RenfortQueue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def request_id_of(job: Job) -> str | None:
    value = (job.meta or {}).get("request_id")
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class JobFigures:
    queued: int
    oldest_queued_seconds: float
    scheduled: int  # deferred e-mails, retries waiting for their interval, digests due later
    failed: int
    started: int
    mail_queued: int
    mail_oldest_seconds: float
    mail_estimated: bool  # more than SCAN jobs queued: the e-mails among the first SCAN, scaled to the whole queue


def _function(data: bytes | None) -> str:
    if not data:
        return ""
    try:
        return str(JSONSerializer.loads(zlib.decompress(data))[0])
    except (zlib.error, ValueError, TypeError, IndexError):
        return ""


def _age(enqueued_at: bytes | None, now: float) -> float:
    if not enqueued_at:
        return 0.0
    try:
        return max(0.0, now - utcparse(enqueued_at.decode()).timestamp())
    except ValueError:
        return 0.0


def job_figures(connection: Redis) -> JobFigures:
    """Two pipelined round trips, whatever the queue's length: sizes, then the head's jobs."""
    queue = job_queue(connection)
    with connection.pipeline(transaction=False) as pipe:
        pipe.llen(queue.key)
        pipe.lrange(queue.key, 0, SCAN - 1)
        for registry in (queue.scheduled_job_registry, queue.failed_job_registry, queue.started_job_registry):
            pipe.zcard(registry.key)
        queued, ids, scheduled, failed, started = pipe.execute()
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(Job.key_for(job_id.decode()), "data", "enqueued_at")
        heads = pipe.execute() if ids else []
    now = time.time()
    oldest = mail_oldest = 0.0
    mail = 0
    for data, enqueued_at in heads:
        age = _age(enqueued_at, now)
        oldest = max(oldest, age)
        if _function(data).startswith(MAIL_MODULES):
            mail += 1
            mail_oldest = max(mail_oldest, age)
    estimated = queued > len(heads) > 0
    return JobFigures(
        queued=int(queued), oldest_queued_seconds=round(oldest, 3), scheduled=int(scheduled), failed=int(failed),
        started=int(started), mail_queued=round(mail * queued / len(heads)) if estimated else mail,
        mail_oldest_seconds=round(mail_oldest, 3), mail_estimated=estimated,
    )
