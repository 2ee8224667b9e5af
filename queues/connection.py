"""The RQ queue and its Redis connection; JSON serialisation only (never pickle)."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

# One queue: a worker listening to a single queue moves each job to an in-progress list before running it
# (RQ's reliable dequeue), so a killed worker loses no job. Drains jump the line with at_front.
QUEUE_NAME = "renfort"


def sync_redis(url: str) -> Redis:
    return Redis.from_url(url, health_check_interval=30, socket_keepalive=True)


def job_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)
