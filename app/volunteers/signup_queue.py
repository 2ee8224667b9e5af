"""The sign-up queue in Redis: a `DurableQueue` under `renfort:signups:` whose records are `QueuedSignup`s, plus
the e-mail dedupe marks (`email:<digest>`) and receipts (`receipt:<id>`: queued or saved)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis

from app.durable_queue import DRAIN_SCHEDULED_TTL, RECEIPT_TTL, DurableQueue
from app.volunteers.schemas import QueuedSignup

PREFIX = "renfort:signups:"
PENDING = PREFIX + "pending"
DEAD = PREFIX + "dead"
DRAIN_SCHEDULED = PREFIX + "drain-scheduled"
__all__ = ["DRAIN_SCHEDULED_TTL", "RECEIPT_TTL", "SignupQueue", "digest", "email_mark", "receipt_key"]


def digest(secret: str, value: str) -> str:
    # Keyed so that Redis key names reveal nothing about who signed up.
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:40]


def email_mark(secret: str, email_normalized: str) -> str:
    return PREFIX + "email:" + digest(secret, email_normalized)


def receipt_key(receipt: str) -> str:
    return PREFIX + "receipt:" + receipt


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: QueuedSignup
    reason: str
    failed_at: str


class SignupQueue(DurableQueue):
    def __init__(self, redis: Redis, secret: str) -> None:
        super().__init__(redis, PREFIX)
        self.secret = secret

    async def receipt_status(self, receipt: str) -> str | None:
        status = await self.redis.get(receipt_key(receipt))
        return status.decode() if isinstance(status, bytes) else status

    async def forget_email(self, email_normalized: str) -> None:
        await self.redis.delete(email_mark(self.secret, email_normalized))

    async def claim(self, consumer: str, size: int, lease_seconds: int) -> list[QueuedSignup]:
        return [msgspec.json.decode(item, type=QueuedSignup)
                for item in await self.claim_raw(consumer, size, lease_seconds)]

    async def bury(self, record: QueuedSignup, reason: str) -> None:
        await self.bury_raw(msgspec.json.encode(record), record.receipt, reason)

    async def oldest_age_seconds(self) -> float:
        head = await self.redis.lindex(PENDING, 0)
        if head is None:
            return 0.0
        accepted_at = msgspec.json.decode(head, type=QueuedSignup).accepted_at
        return max(0.0, (datetime.now(UTC) - accepted_at).total_seconds())

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        records = [msgspec.json.decode(item, type=QueuedSignup) for item in await self.redis.lrange(DEAD, 0, limit - 1)]
        reasons = await self.redis.hmget(self.dead_reasons, [record.receipt for record in records]) if records else []
        letters = []
        for record, raw in zip(records, reasons, strict=True):
            why = msgspec.json.decode(raw) if raw else {"reason": "inconnue", "failed_at": ""}
            letters.append(DeadLetter(record=record, reason=why["reason"], failed_at=why["failed_at"]))
        return letters
