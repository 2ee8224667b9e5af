"""The write queues' dead letters as ops see them, on the console page and through `python -m queues.deadletters`:
record keys, reasons and times only, never what a record says about a person."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis import Redis as SyncRedis

from app.durable_queue import DurableQueue
from queues import enqueue

Drain = Callable[[SyncRedis], object]


@dataclass(frozen=True)
class WriteQueue:
    name: str  # as typed on the command line and in the console's URLs
    title: str  # French, for the page's headings
    noun: str  # French, counted: "3 inscription(s)"
    put_back: str  # French participle agreeing with `noun`
    queue: DurableQueue
    drain: Drain


@dataclass(frozen=True)
class DeadLetterRow:
    key: str
    reason: str
    failed_at: str


@dataclass(frozen=True)
class DeadLetterListing:
    queue: WriteQueue
    total: int
    letters: list[DeadLetterRow]


def write_queues(signups: DurableQueue, applications: DurableQueue) -> dict[str, WriteQueue]:
    return {
        "signups": WriteQueue(
            "signups", "Inscriptions", "inscription(s)", "remise(s)", signups, enqueue.drain_signups
        ),
        "applications": WriteQueue(
            "applications", "Candidatures", "changement(s) de candidature", "remis", applications,
            enqueue.drain_applications,
        ),
    }


async def listing(queue: WriteQueue, limit: int) -> DeadLetterListing:
    letters = await queue.queue.dead_letters(limit=limit)
    rows = [DeadLetterRow(key=letter.key, reason=letter.reason, failed_at=letter.failed_at) for letter in letters]
    return DeadLetterListing(queue=queue, total=await queue.queue.dead_count(), letters=rows)


async def retry(queue: WriteQueue, request_drain: Callable[[Drain], Awaitable[None]]) -> int:
    """Puts the queue's dead letters back (once ops fixed the cause) and has one drain scheduled for them."""
    moved = await queue.queue.retry_dead_letters()
    if moved and await queue.queue.request_drain():
        await request_drain(queue.drain)
    return moved
