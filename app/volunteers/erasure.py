"""Erased people never come back: a tombstone in PostgreSQL, checked by the drain in the same transaction as its
insert.

A copy of someone's sign-up may still wait in the queue, or be in the middle of being written by a drain (even one
whose lease ran out), when they delete their account. Instead of hunting those copies through Redis lists, the
erasure writes a tombstone (the keyed digest of the e-mail, and when) in the transaction that deletes the rows,
and every drain transaction drops the records of a tombstoned e-mail accepted before that time. The two are
ordered by one advisory lock: drains take it shared, an erasure exclusive, so an erasure waits for the drain
transactions already running (their rows are then deleted with the others) and the drains that start afterwards
see the tombstone. A later sign-up with the same address is accepted after the tombstone's time and goes through.
A tombstone is needed only while a copy from before it can still be queued: once the queue has been seen empty,
tombstones older than a safety margin are deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ARRAY, String, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.volunteers.models import Erasure
from app.volunteers.schemas import QueuedSignup
from app.volunteers.signup_queue import digest

ERASURE_LOCK = 0x52454E4601  # pg_advisory_xact_lock key shared by the sign-up drain and erasures
# Between a request stamping `accepted_at` and its record reaching the queue: far longer than any real delay.
SAFETY_MARGIN = timedelta(minutes=10)


async def drop_erased(session: AsyncSession, secret: str, records: Sequence[QueuedSignup]) -> list[QueuedSignup]:
    """In the drain's transaction, before its insert: the records not stopped by a tombstone."""
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": ERASURE_LOCK})
    digests = {record.email_normalized: digest(secret, record.email_normalized) for record in records}
    # One array parameter, not one per record: the statement stays the same whatever the batch's size.
    wanted = bindparam("digests", list(set(digests.values())), type_=ARRAY(String))
    tombstones = dict((await session.execute(
        select(Erasure.email_digest, Erasure.erased_at).where(Erasure.email_digest == func.any(wanted))
    )).all()) if digests else {}
    if not tombstones:
        return list(records)
    return [record for record in records
            if (erased_at := tombstones.get(digests[record.email_normalized])) is None
            or record.accepted_at > erased_at]


async def record_erasure(session: AsyncSession, secret: str, email_normalized: str, erased_at: datetime) -> None:
    """In the erasure's transaction, right before the rows are deleted; the lock is held until it commits."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ERASURE_LOCK})
    statement = insert(Erasure).values(email_digest=digest(secret, email_normalized), erased_at=erased_at)
    await session.execute(statement.on_conflict_do_update(index_elements=[Erasure.email_digest],
                                                          set_={"erased_at": statement.excluded.erased_at}))


async def forget_tombstones(session: AsyncSession, *, queue_empty_at: datetime) -> int:
    """Deletes the tombstones no queued copy can need any more, given a moment the queue was seen empty."""
    result = await session.execute(delete(Erasure).where(Erasure.erased_at < queue_empty_at - SAFETY_MARGIN))
    return int(getattr(result, "rowcount", 0) or 0)
