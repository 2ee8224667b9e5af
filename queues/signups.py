"""The drain job: moves queued sign-ups from Redis into PostgreSQL in batches, losing and doubling nothing.

A consumer claims a batch into its own in-flight list under a lease, writes it in one transaction, queues the
e-mails, then acknowledges. Killed anywhere in between, its lease runs out and the next drain re-drains the batch;
the write is idempotent. While PostgreSQL is unreachable the batch goes back to the queue and the drain waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time

import sentry_sdk
from redis import Redis as SyncRedis
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from app.db.base import unit_of_work
from app.volunteers import signup_queue as keys
from app.volunteers.schemas import QueuedSignup
from app.volunteers.service import SaveOutcome, save_signups
from app.volunteers.signup_queue import SignupQueue
from queues import enqueue
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.drain")

# A drain hands over to a fresh job after this long, so no single job outlives its timeout.
TIME_BUDGET_SECONDS = 120
BAD_DATA = (IntegrityError, DataError)
# Raised when PostgreSQL cannot be reached or drops the connection (bad data was dealt with record by record).
UNREACHABLE = (DBAPIError, OSError, TimeoutError)


def drain_signups(attempt: int = 0) -> dict[str, int]:
    return run_job(lambda context: _drain(context, attempt))


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


async def _drain(context: JobContext, attempt: int) -> dict[str, int]:
    settings = context.settings
    queue = SignupQueue(context.redis, settings.secret_key.reveal())
    consumer = _consumer_name()
    recovered = await queue.recover_orphans()
    if recovered:
        log.warning("re-draining %d sign-ups left in flight by a dead consumer", recovered)
    saved = 0
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    while time.monotonic() < deadline:
        batch = await queue.claim(consumer, settings.drain_batch_size, settings.drain_lease_seconds)
        if not batch:
            if await queue.finish_drain():
                continue
            return {"saved": saved, "recovered": recovered}
        await _spread(context, queue)
        try:
            outcome = await _save(context, queue, batch)
        except UNREACHABLE as error:  # PostgreSQL down or restarting: everything back in the queue, wait, retry
            await queue.requeue(consumer)
            attempt += 1
            delay = min(2 ** min(attempt, 5), 30)
            log.warning("database unavailable (%s); %d sign-ups back in queue, retry in %ds", type(error).__name__,
                        len(batch), delay)
            await asyncio.sleep(delay)
            continue
        attempt = 0
        _queue_mails(context.rq_connection, outcome)
        await queue.acknowledge(consumer, outcome.saved_receipts)
        saved += len(outcome.welcome)
        log.info("drained %d sign-ups (%d new, %d repeats)", len(batch), len(outcome.welcome), len(outcome.reminder))
    enqueue.drain_signups(context.rq_connection, attempt=attempt)
    return {"saved": saved, "recovered": recovered}


async def _spread(context: JobContext, queue: SignupQueue) -> None:
    """With a deep backlog, asks for one more consumer (up to DRAIN_CONSUMERS): batches are independent, so idle
    workers can drain in parallel while this one waits on PostgreSQL."""
    settings = context.settings
    if await queue.depth() < 4 * settings.drain_batch_size:
        return
    if len(await queue.consumers()) >= settings.drain_consumers:
        return
    # At most one extra consumer asked for per second, however many drains see the backlog.
    if await context.redis.set(keys.PREFIX + "spread", "1", nx=True, ex=1):
        enqueue.drain_signups(context.rq_connection)


async def _save(context: JobContext, queue: SignupQueue, batch: list[QueuedSignup]) -> SaveOutcome:
    """Saves a batch; if it holds a record PostgreSQL refuses, splits it until that record stands alone and
    moves it to the dead letters with the reason, so one bad record never blocks the others."""
    try:
        async with unit_of_work(context.engine) as session:
            return await save_signups(session, batch)
    except BAD_DATA as error:
        if len(batch) == 1:
            reason = _reason(error)
            await queue.bury(batch[0], reason)
            log.warning("sign-up %s moved to dead letters: %s", batch[0].receipt, reason)
            sentry_sdk.capture_message(f"sign-up moved to dead letters: {reason}", level="error")
            return SaveOutcome()
        middle = len(batch) // 2
        first = await _save(context, queue, batch[:middle])
        second = await _save(context, queue, batch[middle:])
        return SaveOutcome(
            saved_receipts=first.saved_receipts + second.saved_receipts,
            welcome=first.welcome + second.welcome,
            reminder=first.reminder + second.reminder,
        )


def _reason(error: Exception) -> str:
    # Constraint names and SQLSTATE only: PostgreSQL's message may quote the offending (personal) values.
    original = getattr(error, "orig", None)
    driver_error = getattr(original, "__cause__", None)  # asyncpg's own exception, under SQLAlchemy's adapter
    sqlstate = getattr(original, "sqlstate", None) or getattr(driver_error, "sqlstate", None) or ""
    constraint = getattr(driver_error, "constraint_name", None) or ""
    return " ".join(part for part in (type(error).__name__, sqlstate, constraint) if part)


def _queue_mails(connection: SyncRedis, outcome: SaveOutcome) -> None:
    if outcome.welcome:
        enqueue.send_volunteer_mails(connection, "welcome", outcome.welcome)
    if outcome.reminder:
        enqueue.send_volunteer_mails(connection, "reminder", outcome.reminder)


def ensure_drain(connection: SyncRedis, *, starting: bool = False) -> bool:
    """Called by every worker on its maintenance tick: schedules a drain when sign-ups wait, or when a dead
    consumer left a batch in flight, and none is scheduled. A starting worker schedules one regardless, in case
    the process that set the mark died before enqueueing. Returns True when it enqueued one."""
    waiting = connection.llen(keys.PENDING) > 0 or connection.scard(keys.CONSUMERS) > 0
    if not waiting:
        return False
    if connection.set(keys.DRAIN_SCHEDULED, "1", nx=True, ex=keys.DRAIN_SCHEDULED_TTL) or starting:
        enqueue.drain_signups(connection)
        return True
    return False
