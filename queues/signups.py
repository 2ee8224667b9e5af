"""The sign-up drain: queued sign-ups from Redis into PostgreSQL in batches (the loop, with its leases and the
isolation of records PostgreSQL refuses, is queues/drain.py), then the e-mails they call for."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import msgspec
from redis import Redis as SyncRedis

from app.db.base import unit_of_work
from app.volunteers.erasure import forget_tombstones
from app.volunteers.schemas import QueuedSignup
from app.volunteers.service import save_signups
from app.volunteers.signup_queue import PREFIX, SignupQueue
from queues import enqueue
from queues.drain import Writer, Written, drain, schedule_if_waiting
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.drain")


class MailEffect(msgspec.Struct, frozen=True):
    """E-mails a saved batch calls for, filed in the effects list until RQ takes them: ids and keys only."""

    kind: str
    recipients: list[tuple[int, str]]


def drain_signups(attempt: int = 0) -> dict[str, int]:
    return run_job(lambda context: _drain(context, attempt))


async def _drain(context: JobContext, attempt: int) -> dict[str, int]:
    secret = context.settings.secret_key.reveal()
    queue = SignupQueue(context.redis, secret)

    async def write(raw: list[bytes]) -> Written:
        batch = [msgspec.json.decode(item, type=QueuedSignup) for item in raw]
        async with unit_of_work(context.engine) as session:
            outcome = await save_signups(session, secret, batch)
        log.info("drained %d sign-ups (%d new, %d repeats, %d held back)", len(batch), len(outcome.welcome),
                 len(outcome.reminder), len(outcome.confirm))
        mails = [MailEffect(kind, recipients) for kind, recipients in
                 (("welcome", outcome.welcome), ("reminder", outcome.reminder), ("confirm_email", outcome.confirm))
                 if recipients]
        return Written(outcome.saved_receipts, [msgspec.json.encode(mail) for mail in mails])

    async def deliver(effect: bytes) -> None:
        mail = msgspec.json.decode(effect, type=MailEffect)
        enqueue.send_volunteer_mails(context.rq_connection, mail.kind, mail.recipients)

    def enqueue_next(attempt: int) -> None:
        enqueue.drain_signups(context.rq_connection, attempt=attempt)

    writer = Writer(write=write, describe=queue.describe, deliver=deliver)
    figures = await drain(context, queue, writer, enqueue_next=enqueue_next, attempt=attempt, log=log)
    await _forget_tombstones(context, queue)
    return figures


async def _forget_tombstones(context: JobContext, queue: SignupQueue) -> None:
    """Seen empty now (nothing waiting, nothing in flight), the queue holds no copy older than this moment."""
    seen_at = datetime.now(UTC)
    if await queue.depth() or await queue.consumers():
        return
    try:
        async with unit_of_work(context.engine) as session:
            forgotten = await forget_tombstones(session, queue_empty_at=seen_at)
    except Exception as error:  # housekeeping only: the next drain tries again
        log.warning("could not forget old erasure tombstones (%s)", type(error).__name__)
        return
    if forgotten:
        log.info("forgot %d erasure tombstones no queued sign-up can need", forgotten)


def ensure_drain(connection: SyncRedis, *, starting: bool = False) -> bool:
    """Called by every worker on its maintenance tick (see queues.drain.schedule_if_waiting)."""
    return schedule_if_waiting(connection, PREFIX, enqueue.drain_signups, starting=starting)
