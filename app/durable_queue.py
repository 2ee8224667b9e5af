"""A Redis list that loses and doubles nothing when consumers die: the shape both queued write paths share
(sign-ups, applications).

Layout under a prefix (e.g. `renfort:signups:`):
- `pending`: list of encoded records, oldest first (written by the web's accept path);
- `consumers`: set of drain consumers holding a batch;
- `inflight:<consumer>`: the batch a consumer is writing, moved there atomically before it touches it;
- `lease:<consumer>`: expires when the consumer stops renewing it; its in-flight batch then goes back to `pending`;
- `dead`: records that can never be written, for ops; `dead-reasons`: record key → why and when;
- `drain-scheduled`: set while a drain job is queued or running, so the web enqueues one per cycle, not per write;
- `receipt:<id>`: queued or saved (for the queues whose records carry a receipt).
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis

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

# Marks the batch's receipts saved (if any) and releases the batch, in one step.
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


class DurableQueue:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.pending = prefix + "pending"
        self.consumers_key = prefix + "consumers"
        self.dead = prefix + "dead"
        self.dead_reasons = prefix + "dead-reasons"
        self.drain_scheduled = prefix + "drain-scheduled"
        self._claim = redis.register_script(CLAIM)
        self._acknowledge = redis.register_script(ACKNOWLEDGE)
        self._requeue = redis.register_script(REQUEUE)

    def inflight_key(self, consumer: str) -> str:
        return self.prefix + "inflight:" + consumer

    def lease_key(self, consumer: str) -> str:
        return self.prefix + "lease:" + consumer

    async def claim_raw(self, consumer: str, size: int, lease_seconds: int) -> list[bytes]:
        keys = [self.pending, self.inflight_key(consumer), self.lease_key(consumer), self.consumers_key]
        return list(await self._claim(keys=keys, args=[size, lease_seconds, consumer]))

    async def renew_lease(self, consumer: str, lease_seconds: int) -> None:
        await self.redis.set(self.lease_key(consumer), "1", ex=lease_seconds)

    async def acknowledge(self, consumer: str, saved_receipts: list[str] | tuple[str, ...] = ()) -> None:
        keys = [self.inflight_key(consumer), self.lease_key(consumer), self.consumers_key]
        await self._acknowledge(keys=keys, args=[self.prefix + "receipt:", RECEIPT_TTL, consumer, *saved_receipts])

    async def requeue(self, consumer: str) -> int:
        keys = [self.inflight_key(consumer), self.pending, self.lease_key(consumer), self.consumers_key]
        return int(await self._requeue(keys=keys, args=[consumer]))

    async def consumers(self) -> list[str]:
        return sorted(member.decode() if isinstance(member, bytes) else member
                      for member in await self.redis.smembers(self.consumers_key))

    async def recover_orphans(self) -> int:
        """Re-drains the batches of consumers whose lease ran out (a worker killed mid-batch)."""
        recovered = 0
        for consumer in await self.consumers():
            if not await self.redis.exists(self.lease_key(consumer)):
                recovered += await self.requeue(consumer)
        return recovered

    async def bury_raw(self, raw: bytes, key: str, reason: str) -> None:
        why = {"reason": reason, "failed_at": datetime.now(UTC).isoformat()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.dead, raw)
            pipe.hset(self.dead_reasons, key, msgspec.json.encode(why))
            await pipe.execute()

    async def finish_drain(self) -> bool:
        """Clears the drain mark; True when records arrived meanwhile and this consumer should carry on."""
        await self.redis.delete(self.drain_scheduled)
        if await self.redis.llen(self.pending) == 0:
            return False
        return bool(await self.redis.set(self.drain_scheduled, "1", nx=True, ex=DRAIN_SCHEDULED_TTL))

    async def request_drain(self) -> bool:
        """Marks a drain as scheduled; True when the caller should enqueue one (nobody else has)."""
        return bool(await self.redis.set(self.drain_scheduled, "1", nx=True, ex=DRAIN_SCHEDULED_TTL))

    async def depth(self) -> int:
        return int(await self.redis.llen(self.pending))

    async def inflight(self) -> int:
        return sum([int(await self.redis.llen(self.inflight_key(consumer))) for consumer in await self.consumers()])

    async def dead_count(self) -> int:
        return int(await self.redis.llen(self.dead))

    async def retry_dead_letters(self) -> int:
        """Puts every dead letter back in the queue, one atomic move each (after ops fixed the cause)."""
        moved = 0
        while await self.redis.lmove(self.dead, self.pending, "LEFT", "RIGHT") is not None:
            moved += 1
        return moved
