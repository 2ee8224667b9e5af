"""The sign-up queue in Redis: what the accept path writes and what drain workers claim, acknowledge and re-drain.

Layout (all keys under `renfort:signups:`):
- `pending`: list of JSON `QueuedSignup`, oldest first;
- `inflight:<consumer>`: the batch a drain consumer is writing, moved there atomically before it touches it;
- `lease:<consumer>`: expires when the consumer stops renewing it; its in-flight batch then goes back to `pending`;
- `dead`: records that can never be written, for ops; `dead-reasons`: receipt → why and when;
- `email:<digest>`: the dedupe mark of a normalised e-mail; `receipt:<id>`: queued or saved.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis

from app.volunteers.schemas import QueuedSignup

PREFIX = "renfort:signups:"
PENDING = PREFIX + "pending"
DEAD = PREFIX + "dead"
DEAD_REASONS = PREFIX + "dead-reasons"
DRAIN_SCHEDULED = PREFIX + "drain-scheduled"
RECEIPT_TTL = 30 * 86_400
IDEMPOTENCY_TTL = 86_400
EMAIL_MARK_TTL = 365 * 86_400
DRAIN_SCHEDULED_TTL = 15

ACCEPT = """
if KEYS[3] ~= '' then
  local previous = redis.call('GET', KEYS[3])
  if previous then return {'replay', previous} end
end
local limit = tonumber(ARGV[4])
if limit > 0 then
  local count = redis.call('INCR', KEYS[5])
  if count == 1 then redis.call('EXPIRE', KEYS[5], 60) end
  if count > limit then return {'rate_limited', ''} end
end
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[5]) then return {'backlogged', ''} end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[8]) then
  redis.call('RPUSH', KEYS[1], ARGV[1])
else
  redis.call('RPUSH', KEYS[1], ARGV[2])
end
redis.call('SET', KEYS[4], 'queued', 'EX', ARGV[6])
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[7]) end
if redis.call('SET', KEYS[6], '1', 'NX', 'EX', ARGV[9]) then return {'accepted', '1'} end
return {'accepted', '0'}
"""

# Moves up to N records from `pending` to the consumer's in-flight list and takes the lease, in one step.
CLAIM = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('RPUSH', KEYS[2], unpack(items))
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
end
return items
"""

# Puts an in-flight batch back at the head of `pending`, in its original order.
REQUEUE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #items, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
redis.call('DEL', KEYS[1], KEYS[3])
return #items
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: QueuedSignup
    reason: str
    failed_at: str


@dataclass(frozen=True, slots=True)
class Accepted:
    outcome: str  # accepted | replay | rate_limited | backlogged
    receipt: str
    drain_needed: bool


def _digest(secret: str, value: str) -> str:
    # Keyed so that Redis key names reveal nothing about who signed up.
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:40]


class SignupQueue:
    def __init__(self, redis: Redis, secret: str) -> None:
        self.redis = redis
        self.secret = secret
        self._accept = redis.register_script(ACCEPT)
        self._claim = redis.register_script(CLAIM)
        self._requeue = redis.register_script(REQUEUE)

    # --- accept path (web) -------------------------------------------------------------------------------------

    async def accept(
        self,
        record: QueuedSignup,
        *,
        client_ip: str,
        idempotency_key: str | None,
        ip_limit_per_minute: int,
        backlog_limit: int,
    ) -> Accepted:
        duplicate = QueuedSignup(
            receipt=record.receipt,
            email_normalized=record.email_normalized,
            accepted_at=record.accepted_at,
            duplicate=True,
        )
        minute = int(time.time() // 60)
        keys = [
            PENDING,
            PREFIX + "email:" + _digest(self.secret, record.email_normalized),
            PREFIX + "idempotency:" + _digest(self.secret, idempotency_key) if idempotency_key else "",
            PREFIX + "receipt:" + record.receipt,
            f"{PREFIX}rate:{_digest(self.secret, client_ip)}:{minute}",
            DRAIN_SCHEDULED,
        ]
        args: list[bytes | str | int] = [
            msgspec.json.encode(record),
            msgspec.json.encode(duplicate),
            record.receipt,
            ip_limit_per_minute,
            backlog_limit,
            RECEIPT_TTL,
            IDEMPOTENCY_TTL,
            EMAIL_MARK_TTL,
            DRAIN_SCHEDULED_TTL,
        ]
        outcome, value = await self._accept(keys=keys, args=args)
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        value = value.decode() if isinstance(value, bytes) else value
        if outcome == "replay":
            return Accepted("replay", value, False)
        return Accepted(outcome, record.receipt, value == "1")

    async def receipt_status(self, receipt: str) -> str | None:
        status = await self.redis.get(PREFIX + "receipt:" + receipt)
        return status.decode() if isinstance(status, bytes) else status

    async def forget_email(self, email_normalized: str) -> None:
        await self.redis.delete(PREFIX + "email:" + _digest(self.secret, email_normalized))

    # --- drain side (workers) ----------------------------------------------------------------------------------

    async def claim(self, consumer: str, size: int, lease_seconds: int) -> list[QueuedSignup]:
        keys = [PENDING, PREFIX + "inflight:" + consumer, PREFIX + "lease:" + consumer]
        raw = await self._claim(keys=keys, args=[size, lease_seconds])
        return [msgspec.json.decode(item, type=QueuedSignup) for item in raw]

    async def renew_lease(self, consumer: str, lease_seconds: int) -> None:
        await self.redis.set(PREFIX + "lease:" + consumer, "1", ex=lease_seconds)

    async def acknowledge(self, consumer: str, saved_receipts: list[str]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for receipt in saved_receipts:
                pipe.set(PREFIX + "receipt:" + receipt, "saved", ex=RECEIPT_TTL)
            pipe.delete(PREFIX + "inflight:" + consumer, PREFIX + "lease:" + consumer)
            await pipe.execute()

    async def requeue(self, consumer: str) -> int:
        keys = [PREFIX + "inflight:" + consumer, PENDING, PREFIX + "lease:" + consumer]
        return int(await self._requeue(keys=keys))

    async def recover_orphans(self) -> int:
        """Re-drains the batches of consumers whose lease ran out (a worker killed mid-batch)."""
        recovered = 0
        async for key in self.redis.scan_iter(match=PREFIX + "inflight:*", count=100):
            consumer = (key.decode() if isinstance(key, bytes) else key).rsplit(":", 1)[1]
            if not await self.redis.exists(PREFIX + "lease:" + consumer):
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
        total = 0
        async for key in self.redis.scan_iter(match=PREFIX + "inflight:*", count=100):
            total += int(await self.redis.llen(key))
        return total

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
