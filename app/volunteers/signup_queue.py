"""The sign-up queue in Redis: its keys, and what drain workers do with it.

Layout (all keys under `renfort:signups:`):
- `pending`: list of JSON `QueuedSignup`, oldest first (written by `app.volunteers.intake`);
- `consumers`: set of drain consumers holding a batch;
- `inflight:<consumer>`: the batch a consumer is writing, moved there atomically before it touches it;
- `lease:<consumer>`: expires when the consumer stops renewing it; its in-flight batch then goes back to `pending`;
- `dead`: records that can never be written, for ops; `dead-reasons`: receipt → why and when;
- `email:<digest>`: the dedupe mark of a normalised e-mail; `receipt:<id>`: queued or saved.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis

from app.volunteers.schemas import QueuedSignup

PREFIX = "renfort:signups:"
PENDING = PREFIX + "pending"
CONSUMERS = PREFIX + "consumers"
DEAD = PREFIX + "dead"
DEAD_REASONS = PREFIX + "dead-reasons"
DRAIN_SCHEDULED = PREFIX + "drain-scheduled"
DRAIN_SCHEDULED_TTL = 15
RECEIPT_TTL = 30 * 86_400

# Moves up to N records from `pending` to the consumer's in-flight list and takes the lease, in one step.
CLAIM = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('RPUSH', KEYS[2], unpack(items))
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
  redis.call('SADD', KEYS[4], ARGV[3])
end
return items
"""

# Marks the batch's receipts saved and releases the batch, in one step.
ACKNOWLEDGE = """
for i = 4, #ARGV do redis.call('SET', ARGV[1] .. ARGV[i], 'saved', 'EX', ARGV[2]) end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[3])
return 1
"""

# Puts an in-flight batch back at the head of `pending`, in its original order, and releases it.
REQUEUE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #items, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SREM', KEYS[4], ARGV[1])
return #items
"""


def digest(secret: str, value: str) -> str:
    # Keyed so that Redis key names reveal nothing about who signed up.
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:40]


def email_mark(secret: str, email_normalized: str) -> str:
    return PREFIX + "email:" + digest(secret, email_normalized)


def receipt_key(receipt: str) -> str:
    return PREFIX + "receipt:" + receipt


def inflight_key(consumer: str) -> str:
    return PREFIX + "inflight:" + consumer


def lease_key(consumer: str) -> str:
    return PREFIX + "lease:" + consumer


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: QueuedSignup
    reason: str
    failed_at: str


class SignupQueue:
    def __init__(self, redis: Redis, secret: str) -> None:
        self.redis = redis
        self.secret = secret
        self._claim = redis.register_script(CLAIM)
        self._acknowledge = redis.register_script(ACKNOWLEDGE)
        self._requeue = redis.register_script(REQUEUE)

    async def receipt_status(self, receipt: str) -> str | None:
        status = await self.redis.get(receipt_key(receipt))
        return status.decode() if isinstance(status, bytes) else status

    async def forget_email(self, email_normalized: str) -> None:
        await self.redis.delete(email_mark(self.secret, email_normalized))

    # --- drain side (workers) ----------------------------------------------------------------------------------

    async def claim(self, consumer: str, size: int, lease_seconds: int) -> list[QueuedSignup]:
        keys = [PENDING, inflight_key(consumer), lease_key(consumer), CONSUMERS]
        raw = await self._claim(keys=keys, args=[size, lease_seconds, consumer])
        return [msgspec.json.decode(item, type=QueuedSignup) for item in raw]

    async def renew_lease(self, consumer: str, lease_seconds: int) -> None:
        await self.redis.set(lease_key(consumer), "1", ex=lease_seconds)

    async def acknowledge(self, consumer: str, saved_receipts: list[str]) -> None:
        keys = [inflight_key(consumer), lease_key(consumer), CONSUMERS]
        await self._acknowledge(keys=keys, args=[PREFIX + "receipt:", RECEIPT_TTL, consumer, *saved_receipts])

    async def requeue(self, consumer: str) -> int:
        keys = [inflight_key(consumer), PENDING, lease_key(consumer), CONSUMERS]
        return int(await self._requeue(keys=keys, args=[consumer]))

    async def consumers(self) -> list[str]:
        return sorted(member.decode() if isinstance(member, bytes) else member
                      for member in await self.redis.smembers(CONSUMERS))

    async def recover_orphans(self) -> int:
        """Re-drains the batches of consumers whose lease ran out (a worker killed mid-batch)."""
        recovered = 0
        for consumer in await self.consumers():
            if not await self.redis.exists(lease_key(consumer)):
                recovered += await self.requeue(consumer)
        return recovered

    async def bury(self, record: QueuedSignup, reason: str) -> None:
        why = {"reason": reason, "failed_at": datetime.now(UTC).isoformat()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(DEAD, msgspec.json.encode(record))
            pipe.hset(DEAD_REASONS, record.receipt, msgspec.json.encode(why))
            await pipe.execute()

    async def finish_drain(self) -> bool:
        """Clears the drain mark; True when records arrived meanwhile and this consumer should carry on."""
        await self.redis.delete(DRAIN_SCHEDULED)
        if await self.redis.llen(PENDING) == 0:
            return False
        return bool(await self.redis.set(DRAIN_SCHEDULED, "1", nx=True, ex=DRAIN_SCHEDULED_TTL))

    async def request_drain(self) -> bool:
        """Marks a drain as scheduled; True when the caller should enqueue one (nobody else has)."""
        return bool(await self.redis.set(DRAIN_SCHEDULED, "1", nx=True, ex=DRAIN_SCHEDULED_TTL))

    # --- observation -------------------------------------------------------------------------------------------

    async def depth(self) -> int:
        return int(await self.redis.llen(PENDING))

    async def inflight(self) -> int:
        return sum([int(await self.redis.llen(inflight_key(consumer))) for consumer in await self.consumers()])

    async def oldest_age_seconds(self) -> float:
        head = await self.redis.lindex(PENDING, 0)
        if head is None:
            return 0.0
        accepted_at = msgspec.json.decode(head, type=QueuedSignup).accepted_at
        return max(0.0, (datetime.now(UTC) - accepted_at).total_seconds())

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        records = [msgspec.json.decode(item, type=QueuedSignup) for item in await self.redis.lrange(DEAD, 0, limit - 1)]
        reasons = await self.redis.hmget(DEAD_REASONS, [record.receipt for record in records]) if records else []
        letters = []
        for record, raw in zip(records, reasons, strict=True):
            why = msgspec.json.decode(raw) if raw else {"reason": "inconnue", "failed_at": ""}
            letters.append(DeadLetter(record=record, reason=why["reason"], failed_at=why["failed_at"]))
        return letters

    async def dead_count(self) -> int:
        return int(await self.redis.llen(DEAD))

    async def retry_dead_letters(self) -> int:
        """Puts every dead letter back in the queue, one atomic move each (after ops fixed the cause)."""
        moved = 0
        while await self.redis.lmove(DEAD, PENDING, "LEFT", "RIGHT") is not None:
            moved += 1
        return moved
