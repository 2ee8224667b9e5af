"""The drain loop both queued write paths share: claim a batch into the consumer's in-flight list under a lease,
write it, acknowledge; while PostgreSQL is unreachable, put the batch back and wait.

Killed anywhere in between, the consumer's lease runs out and the next drain re-drains the batch, so every write a
drain makes must be idempotent. A drain hands over to a fresh job after TIME_BUDGET_SECONDS, so no job outlives its
timeout, and asks for extra consumers while the backlog is deep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

from redis import Redis as SyncRedis
from sqlalchemy.exc import DBAPIError

from app.durable_queue import DRAIN_SCHEDULED_TTL, DurableQueue
from queues.runtime import JobContext

TIME_BUDGET_SECONDS = 120
# Raised when PostgreSQL cannot be reached or drops the connection (bad data is dealt with by each writer).
UNREACHABLE = (DBAPIError, OSError, TimeoutError)

# Writes a claimed batch (raw records) and returns the receipts to mark saved; raises UNREACHABLE to retry later.
Write = Callable[[list[bytes]], Awaitable[list[str]]]


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


async def drain(context: JobContext, queue: DurableQueue, write: Write, *, enqueue_next: Callable[[int], object],
                attempt: int, log: logging.Logger) -> dict[str, int]:
    settings = context.settings
    consumer = consumer_name()
    recovered = await queue.recover_orphans()
    if recovered:
        log.warning("re-draining %d records left in flight by a dead consumer", recovered)
    drained = 0
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    while time.monotonic() < deadline:
        batch = await queue.claim_raw(consumer, settings.drain_batch_size, settings.drain_lease_seconds)
        if not batch:
            if await queue.finish_drain():
                continue
            return {"drained": drained, "recovered": recovered}
        await _spread(context, queue, enqueue_next)
        try:
            receipts = await write(batch)
        except UNREACHABLE as error:  # PostgreSQL down or restarting: everything back in the queue, wait, retry
            await queue.requeue(consumer)
            attempt += 1
            delay = min(2 ** min(attempt, 5), 30)
            log.warning("database unavailable (%s); %d records back in queue, retry in %ds", type(error).__name__,
                        len(batch), delay)
            await asyncio.sleep(delay)
            continue
        attempt = 0
        await queue.acknowledge(consumer, receipts)
        drained += len(batch)
    enqueue_next(attempt)
    return {"drained": drained, "recovered": recovered}


async def _spread(context: JobContext, queue: DurableQueue, enqueue_next: Callable[[int], object]) -> None:
    """With a deep backlog, asks for one more consumer (up to DRAIN_CONSUMERS): batches are independent, so idle
    workers can drain in parallel while this one waits on PostgreSQL."""
    settings = context.settings
    if await queue.depth() < 4 * settings.drain_batch_size:
        return
    if len(await queue.consumers()) >= settings.drain_consumers:
        return
    # At most one extra consumer asked for per second, however many drains see the backlog.
    if await context.redis.set(queue.prefix + "spread", "1", nx=True, ex=1):
        enqueue_next(0)


def schedule_if_waiting(connection: SyncRedis, prefix: str, enqueue_drain: Callable[[SyncRedis], object], *,
                        starting: bool = False) -> bool:
    """Called by every worker on its maintenance tick: schedules a drain when records wait, or when a dead consumer
    left a batch in flight, and none is scheduled. A starting worker schedules one regardless, in case the process
    that set the mark died before enqueueing. Returns True when it enqueued one."""
    waiting = connection.llen(prefix + "pending") > 0 or connection.scard(prefix + "consumers") > 0
    if not waiting:
        return False
    if connection.set(prefix + "drain-scheduled", "1", nx=True, ex=DRAIN_SCHEDULED_TTL) or starting:
        enqueue_drain(connection)
        return True
    return False
