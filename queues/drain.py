"""The drain loop both queued write paths share: claim a batch under a lease, write it while renewing the lease,
acknowledge; what went wrong decides what happens next (app/db/errors.py):

- a record PostgreSQL refuses for its content: the batch is split until that record stands alone, and it goes to
  the dead letters with the reason, so one bad record never blocks the others;
- PostgreSQL unreachable, shutting down or busy: the whole batch goes back to the head of the queue; wait, retry;
- a bug (anything else): the same, and it is reported, since the records are not at fault.

The lease is renewed while the batch is written; if it is lost anyway (this process stalled longer than a lease),
the write is cancelled and the batch is left to whoever took it back: a fenced acknowledgement would be refused.
Killed anywhere in between, the lease runs out and the next drain re-drains the batch, so every write a drain makes
must be idempotent. What a write calls for next (e-mails) is filed by the acknowledgement in the queue's effects
list and handed to RQ from there, so a Redis that refuses new jobs (at its memory limit) delays e-mails but never
loses them.
A drain hands over to a fresh job after TIME_BUDGET_SECONDS, so no job outlives its timeout, and asks for extra
consumers while the backlog is deep.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import sentry_sdk
from redis import Redis as SyncRedis
from redis.exceptions import RedisError

from app.db.errors import Failure, classify, reason
from app.durable_queue import DRAIN_SCHEDULED_TTL, Claim, DurableQueue, QueueKeys
from queues.runtime import JobContext

TIME_BUDGET_SECONDS = 120
# Past the budget a drain hands over; if Redis refuses the new job (full), it keeps draining, up to this, well
# under the job's timeout.
HARD_LIMIT_SECONDS = 420


@dataclass
class Written:
    """What a batch's write produced: receipts now safe in PostgreSQL, and effects to deliver (encoded)."""

    receipts: list[str] = field(default_factory=list)
    effects: list[bytes] = field(default_factory=list)

    def __add__(self, other: Written) -> Written:
        return Written(self.receipts + other.receipts, self.effects + other.effects)


@dataclass(frozen=True, slots=True)
class Writer:
    # Writes records in one transaction; raises on failure (classified by the loop).
    write: Callable[[list[bytes]], Awaitable[Written]]
    # A record's dead-letter key and owner (the person it is about); called only for a record being buried.
    describe: Callable[[bytes], tuple[str, str]]
    # Hands one effect to RQ; raises RedisError when Redis refuses it, and the effect waits for the next turn.
    deliver: Callable[[bytes], Awaitable[None]]


class LeaseLost(Exception):
    """This consumer's lease ran out and its batch was taken back: it must stop touching the batch."""


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


async def drain(context: JobContext, queue: DurableQueue, writer: Writer, *, enqueue_next: Callable[[int], object],
                attempt: int, log: logging.Logger) -> dict[str, int]:
    settings = context.settings
    consumer = consumer_name()
    recovered = await queue.recover_orphans()
    if recovered:
        log.warning("re-draining %d records left in flight by a dead consumer", recovered)
    figures = {"drained": 0, "recovered": recovered, "buried": 0}
    started = time.monotonic()
    while True:
        # Redis refusing new jobs (full) only delays the effects: the queue keeps shrinking meanwhile.
        delivered = await _deliver(queue, writer, log)
        elapsed = time.monotonic() - started
        if elapsed >= TIME_BUDGET_SECONDS and (_hand_over(enqueue_next, attempt, log) or elapsed >= HARD_LIMIT_SECONDS):
            return figures
        claim = await queue.claim(consumer, settings.drain_batch_size, settings.drain_lease_seconds)
        if not claim.records:
            # Effects RQ refused wait for the next drain (the workers' tick schedules one): no spinning on them.
            if await queue.finish_drain() and (delivered or await queue.depth()):
                continue
            return figures
        await _spread(context, queue, enqueue_next)
        try:
            written = await _under_lease(queue, claim, settings.drain_lease_seconds,
                                         _isolating(queue, claim, writer, claim.records, figures, log))
        except LeaseLost:
            log.warning("lost the lease on a batch of %d records while writing it; another consumer drains it",
                        len(claim.records))
            consumer = consumer_name()  # the old name's in-flight list is the recovery's now, never this loop's
            continue
        except Exception as error:
            attempt += 1
            delay = min(2 ** min(attempt, 5), 30)
            failure = classify(error)
            put_back = await queue.requeue(claim)
            if put_back < 0:
                consumer = consumer_name()  # the lease was lost meanwhile: the batch is the recovery's
            if failure is Failure.UNAVAILABLE:
                log.warning("database unavailable (%s); %d records back in queue, retry in %ds",
                            type(error).__name__, max(put_back, 0), delay)
            else:
                # The type and SQLSTATE only: an exception's text may quote personal values.
                log.error("writing a batch failed (%s); %d records back in queue, retry in %ds", reason(error),
                          max(put_back, 0), delay)
                sentry_sdk.capture_message(f"drain of {queue.prefix} failed: {reason(error)}", level="error")
            await asyncio.sleep(delay)
            continue
        attempt = 0
        if not await queue.acknowledge(claim, written.receipts, written.effects):
            log.warning("lost the lease on a batch of %d records before acknowledging it; it is drained again",
                        len(claim.records))
            consumer = consumer_name()
            continue
        figures["drained"] += len(claim.records)


async def _isolating(queue: DurableQueue, claim: Claim, writer: Writer, records: list[bytes],
                     figures: dict[str, int], log: logging.Logger) -> Written:
    """Writes `records`; when PostgreSQL refuses one for its content, halves the batch until that record stands
    alone and buries it, so the others land."""
    try:
        return await writer.write(records)
    except Exception as error:
        if classify(error) is not Failure.REFUSED:
            raise
        if len(records) > 1:
            middle = len(records) // 2
            first = await _isolating(queue, claim, writer, records[:middle], figures, log)
            return first + await _isolating(queue, claim, writer, records[middle:], figures, log)
        record, why = records[0], reason(error)
        try:
            key, owner = writer.describe(record)
        except Exception:  # not even decodable: named by its digest
            key, owner = "raw-" + hashlib.sha256(record).hexdigest()[:24], ""
        if not await queue.bury(claim, record, key=key, owner=owner, reason=why):
            raise LeaseLost from error
        figures["buried"] += 1
        log.warning("record %s moved to dead letters: %s", key, why)
        sentry_sdk.capture_message(f"record of {queue.prefix} moved to dead letters: {why}", level="error")
        return Written()


async def _under_lease(queue: DurableQueue, claim: Claim, lease_seconds: int,
                       body: Coroutine[Any, Any, Written]) -> Written:
    """Runs `body` while renewing the claim's lease; cancels it and raises LeaseLost when the lease is gone."""
    task = asyncio.ensure_future(body)
    interval = max(lease_seconds / 3, 0.2)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            try:
                held = await queue.renew(claim, lease_seconds)
            except RedisError:
                continue  # Redis away for a moment: keep writing; the fenced acknowledgement decides
            if not held:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise LeaseLost
    finally:
        if not task.done():
            task.cancel()


async def _deliver(queue: DurableQueue, writer: Writer, log: logging.Logger) -> bool:
    """False when the effects wait for another turn: Redis refused them, or another consumer is delivering."""
    try:
        delivered = await queue.deliver_effects(writer.deliver)
    except RedisError as error:
        log.warning("could not hand effects to RQ (%s); they stay in the effects list", type(error).__name__)
        return False
    return delivered is not None


def _hand_over(enqueue_next: Callable[[int], object], attempt: int, log: logging.Logger) -> bool:
    try:
        enqueue_next(attempt)
    except RedisError as error:
        log.warning("could not hand the drain over to a new job (%s); carrying on", type(error).__name__)
        return False
    return True


async def _spread(context: JobContext, queue: DurableQueue, enqueue_next: Callable[[int], object]) -> None:
    """With a deep backlog, asks for one more consumer (up to DRAIN_CONSUMERS): batches are independent, so idle
    workers can drain in parallel while this one waits on PostgreSQL."""
    settings = context.settings
    if await queue.depth() < 4 * settings.drain_batch_size:
        return
    if len(await queue.consumers()) >= settings.drain_consumers:
        return
    try:
        # At most one extra consumer asked for per second, however many drains see the backlog.
        if await context.redis.set(queue.keys.spread, "1", nx=True, ex=1):
            enqueue_next(0)
    except RedisError:
        pass  # Redis full: no extra consumer for now, this one carries on


def schedule_if_waiting(connection: SyncRedis, prefix: str, enqueue_drain: Callable[[SyncRedis], object], *,
                        starting: bool = False) -> bool:
    """Called by every worker on its maintenance tick: schedules a drain when records or effects wait, or when a
    dead consumer left a batch in flight, and none is scheduled. A starting worker schedules one regardless, in case
    the process that set the mark died before enqueueing. Returns True when it enqueued one."""
    keys = QueueKeys(prefix)
    waiting = (connection.llen(keys.pending) > 0 or connection.scard(keys.consumers) > 0
               or connection.llen(keys.effects) > 0)
    if not waiting:
        return False
    if connection.set(keys.drain_scheduled, "1", nx=True, ex=DRAIN_SCHEDULED_TTL) or starting:
        enqueue_drain(connection)
        return True
    return False
