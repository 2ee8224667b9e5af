"""The sign-up drain: moves queued sign-ups from Redis into PostgreSQL in batches (the loop is queues/drain.py),
bisecting a batch PostgreSQL refuses so that one bad record goes to the dead letters and never blocks the others.
"""

from __future__ import annotations

import logging

import msgspec
import sentry_sdk
from redis import Redis as SyncRedis
from sqlalchemy.exc import DataError, IntegrityError

from app.db.base import unit_of_work
from app.volunteers import signup_queue as keys
from app.volunteers.schemas import QueuedSignup
from app.volunteers.service import SaveOutcome, save_signups
from app.volunteers.signup_queue import SignupQueue
from queues import enqueue
from queues.drain import drain, schedule_if_waiting
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.drain")

BAD_DATA = (IntegrityError, DataError)


def drain_signups(attempt: int = 0) -> dict[str, int]:
    return run_job(lambda context: _drain(context, attempt))


async def _drain(context: JobContext, attempt: int) -> dict[str, int]:
    queue = SignupQueue(context.redis, context.settings.secret_key.reveal())

    async def write(raw: list[bytes]) -> list[str]:
        batch = [msgspec.json.decode(item, type=QueuedSignup) for item in raw]
        outcome = await _save(context, queue, batch)
        _queue_mails(context.rq_connection, outcome)
        log.info("drained %d sign-ups (%d new, %d repeats)", len(batch), len(outcome.welcome), len(outcome.reminder))
        return outcome.saved_receipts

    def enqueue_next(attempt: int) -> None:
        enqueue.drain_signups(context.rq_connection, attempt=attempt)

    return await drain(context, queue, write, enqueue_next=enqueue_next, attempt=attempt, log=log)


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
    """Called by every worker on its maintenance tick (see queues.drain.schedule_if_waiting)."""
    return schedule_if_waiting(connection, keys.PREFIX, enqueue.drain_signups, starting=starting)
