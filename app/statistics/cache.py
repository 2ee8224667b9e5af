"""The statistics document in Redis: written whole by the refresh job, read whole by the page (no SQL on its way).

The page never builds the document itself: when it is missing (a first deploy, a flushed Redis) or unreadable (a
release changed its shape), the page asks for a refresh, at most once per REQUEST_LOCK_SECONDS across all web
processes, and says the figures are being computed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.statistics.schemas import Statistics
from queues import enqueue

log = logging.getLogger("renfort.statistics")

REFRESH_SECONDS = 600  # the workers recompute the document this often
# Kept well past its refresh period: workers stopped for a while leave the last figures (dated) on the page.
KEEP_SECONDS = 7 * 86_400
REQUEST_LOCK_SECONDS = 60


@dataclass(frozen=True, slots=True)
class StatisticsKeys:
    document: str
    requested: str  # a page asked for a refresh: no other page asks again for a minute
    scheduled: str  # a worker's tick enqueued the periodic refresh

    @classmethod
    def of(cls, prefix: str = "renfort:statistics:") -> StatisticsKeys:
        return cls(prefix + "document", prefix + "refresh-requested", prefix + "refresh-scheduled")


KEYS = StatisticsKeys.of()
_decoder = msgspec.json.Decoder(Statistics)


async def store(redis: Redis, document: Statistics, keys: StatisticsKeys = KEYS) -> None:
    await redis.set(keys.document, msgspec.json.encode(document), ex=KEEP_SECONDS)


def decode(raw: bytes | str | None) -> Statistics | None:
    if raw is None:
        return None
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:  # written by another version of this code: refreshed like a missing one
        return None


async def read(redis: Redis, keys: StatisticsKeys = KEYS) -> Statistics | None:
    return decode(await redis.get(keys.document))


async def request_refresh(redis: Redis, rq_connection: SyncRedis, keys: StatisticsKeys = KEYS,
                          refresh: Callable[[SyncRedis], object] = enqueue.refresh_statistics) -> bool:
    """Enqueues a refresh unless one was asked for in the last REQUEST_LOCK_SECONDS; True when this call did."""
    if not await redis.set(keys.requested, b"1", nx=True, ex=REQUEST_LOCK_SECONDS):
        return False
    try:
        await asyncio.to_thread(refresh, rq_connection)
    except RedisError as error:  # the workers' tick schedules one within REFRESH_SECONDS anyway
        log.warning("could not enqueue a statistics refresh (%s)", type(error).__name__)
        return False
    return True
